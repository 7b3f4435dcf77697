using System.Collections.Concurrent;
using System.Diagnostics;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>
/// Issue 6's acceptance: 10,000 ETA tasks due within the next 30 s (here 5 to 12 s) do not delay immediate tasks sent after them, and
/// each runs once, not before its ETA. On SQLite, Redis and RabbitMQ.
/// They run alone (<see cref="EtaAtScaleGroup"/>), as timing tests. On RabbitMQ a deferred task raises the prefetch by
/// one, which alone let these 10,000 in at one window per round trip: 2 s alone, 12-18 s on a busy machine; a flood now
/// lets the broker send ahead (1.4 s with three CPU burners beside).
/// </summary>
[Collection(EtaAtScaleGroup.Name)]
public sealed class EtaAtScaleTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private const int EtaTasks = 10_000;
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "eta-scale");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public void Dispose() => _brokers.Dispose();

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task TenThousandEtaTasks_ImmediateTasksRunAtOnce_EachEtaTaskRunsOnceAndNotEarly(string broker)
    {
        await using CeleriacApp app = await _brokers.NewAppAsync(broker, o => o.ResultBackend = "disabled://");
        var runs = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var early = new ConcurrentBag<string>();
        var immediateDone = new ConcurrentDictionary<string, TimeSpan>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        app.Task("tasks.at", (string name, TaskContext context) =>
        {
            runs.AddOrUpdate(name, 1, (_, n) => n + 1);
            if (context.Eta is { } eta && TimeProvider.System.GetUtcNow() < eta - TimeSpan.FromMilliseconds(20))
            {
                early.Add(name);
            }
        });
        app.Task("tasks.now", (string name) => immediateDone[name] = clock.Elapsed);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        // Due 5 to 12 s from now, in random order; sent in batches as a busy producer would. (The class runs alone, so
        // the spread is kept short: a wider one holds the same 10,000 tasks only longer.)
        DateTimeOffset start = TimeProvider.System.GetUtcNow();
        for (int batch = 0; batch < EtaTasks / 500; batch++)
        {
            await Task.WhenAll(Enumerable.Range(batch * 500, 500).Select(i => app.SendTaskAsync(
                "tasks.at", ["eta" + i], options: new ApplyOptions { Eta = start.AddSeconds(5 + Random.Shared.NextDouble() * 7) }, ct: Ct)));
        }

        TimeSpan sentAt = clock.Elapsed;
        await Task.WhenAll(Enumerable.Range(0, 100).Select(i => app.SendTaskAsync("tasks.now", ["now" + i], ct: Ct)));
        while (immediateDone.Count < 100 && clock.Elapsed - sentAt < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(20, Ct);
        }

        Assert.Equal(100, immediateDone.Count);
        // The queue is FIFO: the worker first takes (and sets aside) the 10,000 ETA tasks ahead of them, which took
        // 0.7 s on Redis and 1.6 s on SQLite here; what must not happen is waiting for any ETA.
        TimeSpan slowest = immediateDone.Values.Max() - sentAt;
        Assert.True(slowest < TimeSpan.FromSeconds(5), $"immediate tasks took up to {slowest} behind {EtaTasks} ETA tasks");

        while (runs.Count < EtaTasks && clock.Elapsed < TimeSpan.FromSeconds(90))
        {
            await Task.Delay(100, Ct);
        }

        await Task.Delay(1000, Ct);
        Assert.Equal(EtaTasks, runs.Count);
        Assert.All(runs, kv => Assert.Equal(1, kv.Value));
        Assert.Empty(early);
        TestContext.Current.TestOutputHelper?.WriteLine($"{broker}: sent in {sentAt.TotalSeconds:F1} s; immediate tasks within {slowest.TotalMilliseconds:F0} ms; all ETA tasks ran by {clock.Elapsed.TotalSeconds:F1} s");
    }
}

/// <summary>The ETA-at-scale tests' own collection: nothing else runs while they time the immediate tasks.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EtaAtScaleGroup
{
    public const string Name = "EtaAtScale";
}
