using System.Diagnostics;
using System.Globalization;
using Celeriac.Memcached;
using Celeriac.Results;
using Celeriac.TestServers;
using Celeriac.Tests.Conformance;
using Celeriac.Worker;

namespace Celeriac.Tests.Memcached;

/// <summary>
/// Round trips on a real memcached, printed for the README (run with <c>-showLiveOutput</c>): a store and a get, and a
/// task through an in-process worker with its result on memcached. The bounds only catch a pathology (a poll where a
/// wake-up was due, a connection per command).
/// </summary>
public sealed class MemcachedRoundTripTests(MemcachedServerFixture memcached) : IClassFixture<MemcachedServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task StoreThenGet_Sequential_MedianWellUnderAMillisecond()
    {
        await using var backend = new MemcachedResultBackend(new ResultBackendOptions { Url = new Uri(memcached.Server.Url()) });
        var meta = new TaskResultMeta { TaskId = "warm", Status = TaskStates.Success, Result = "42"u8.ToArray() };
        double[] samples = new double[2000];
        for (int i = -200; i < samples.Length; i++)
        {
            string id = "rtt-" + i.ToString(CultureInfo.InvariantCulture);
            long start = Stopwatch.GetTimestamp();
            await backend.StoreAsync(new TaskResultMeta { TaskId = id, Status = meta.Status, Result = meta.Result }, Ct);
            TaskResultMeta? got = await backend.GetAsync(id, Ct);
            if (i >= 0)
            {
                samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            }

            Assert.Equal(TaskStates.Success, got?.Status);
        }

        Report("store + get", samples, "µs");
        Assert.InRange(Percentile(samples, 0.5), 1, 5_000);
    }

    [Fact]
    public async Task TaskThroughAWorker_ResultOnMemcached_RoundTrip()
    {
        await using var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = "memory://" + Guid.NewGuid().ToString("N"),
            ResultBackend = memcached.Server.Url(),
            Concurrency = 1,
        });
        app.Task("tasks.add", (long x, long y) => x + y);
        using var stop = new CancellationTokenSource();
        var worker = new CeleriacWorker(app);
        Task run = worker.RunAsync(stop.Token);
        await worker.Ready.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        double[] samples = new double[300];
        for (int i = -30; i < samples.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            AsyncResult r = await app.SendTaskAsync("tasks.add", [i, 1], ct: Ct);
            Assert.Equal(i + 1, await r.GetAsync<long>(TimeSpan.FromSeconds(10), Ct));
            if (i >= 0)
            {
                samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        }

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), Ct);
        Report("worker round trip (memory:// broker, in-process worker, result on memcached)", samples, "ms");
        Assert.InRange(Percentile(samples, 0.5), 0.01, 50);
    }

    [Fact]
    public async Task TaskThroughAnotherAppsWorker_ResultPolledFromMemcached_RoundTrip()
    {
        // The worker has a backend of its own, as another process has: the client learns of the result by polling
        // (from PollInterval / 16 doubling to PollInterval, 500 ms by default), as Celery's client does every 0.5 s.
        await using RedisServer redis = await RedisServer.StartAsync(Ct);
        await using var client = new CeleriacApp(new CeleriacOptions { BrokerUrl = redis.Url(0), ResultBackend = memcached.Server.Url() });
        await using var workerApp = new CeleriacApp(new CeleriacOptions { BrokerUrl = redis.Url(0), ResultBackend = memcached.Server.Url(), Concurrency = 1 });
        workerApp.Task("tasks.add", (long x, long y) => x + y);
        using var stop = new CancellationTokenSource();
        var worker = new CeleriacWorker(workerApp);
        Task run = worker.RunAsync(stop.Token);
        await worker.Ready.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        double[] samples = new double[60];
        for (int i = -5; i < samples.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            AsyncResult r = await client.SendTaskAsync("tasks.add", [i, 1], ct: Ct);
            Assert.Equal(i + 1, await r.GetAsync<long>(TimeSpan.FromSeconds(10), Ct));
            if (i >= 0)
            {
                samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        }

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(15), Ct);
        Report("worker round trip (Redis broker, worker with its own backend, result polled from memcached)", samples, "ms");
        Assert.InRange(Percentile(samples, 0.5), 0.01, 400);
    }

    private static double Percentile(double[] samples, double p)
    {
        double[] sorted = [.. samples.Order()];
        return sorted[(int)Math.Min(sorted.Length - 1, Math.Round(p * (sorted.Length - 1)))];
    }

    private static void Report(string what, double[] samples, string unit) =>
        TestContext.Current.TestOutputHelper?.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{what}: median {Percentile(samples, 0.5):0.###} {unit}, p90 {Percentile(samples, 0.9):0.###} {unit}, p99 {Percentile(samples, 0.99):0.###} {unit} ({samples.Length} samples)"));
}
