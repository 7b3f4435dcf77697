using Celeriac.TestServers;

namespace Celeriac.Benchmarks;

/// <summary>
/// Redis: Celeriac and Python Celery 5.2 on one redis-server the benchmark starts (broker in database 0, results in
/// database 1). Every drain reads the same bytes: messages sent by a Python Celery client once, DUMPed, and RESTOREd
/// before each worker starts; the drain with results is also timed a second time by the same, warm, worker, and (with
/// <c>--aot-worker</c>) by a NativeAOT worker.
/// </summary>
internal static partial class Bench
{
    private static Task<Comparison> RedisAsync(BenchOptions o, Report report) =>
        VersusCeleryAsync(o, report, "redis", "Redis: Celeriac and Python Celery 5.2 on one redis-server", RedisProbe.Ends,
            ct => RedisServer.StartAsync(ct), async server => await RedisProbe.ConnectAsync(server), pools: true, warm: true, aot: o.AotWorker);
}
