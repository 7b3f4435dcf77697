using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;
using Celeriac.Worker;
using Microsoft.Data.Sqlite;

namespace Celeriac.Tests.Worker;

/// <summary>Tasks waiting for their ETA do not take the prefetch window from immediate ones.</summary>
public sealed class EtaPrefetchTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-eta-").FullName;
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "eta-prefetch");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        _brokers.Dispose();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    public static TheoryData<string> Brokers => ["memory", "sqlite"];

    public static TheoryData<string> RealBrokers => TestBrokers.Names;

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task Worker_MoreCountdownTasksThanPrefetch_ImmediateTaskStillRunsAndCountdownsRunLater(string broker)
    {
        string url = broker == "memory" ? "memory://" + Guid.NewGuid().ToString("N") : "sqlite:///" + Path.Join(_directory, "eta.db");

        // Window of one: before deferral, a single waiting countdown task blocked everything behind it.
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = url, Concurrency = 1, PrefetchMultiplier = 1 });
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        AsyncResult[] later = await Task.WhenAll(Enumerable.Range(0, 5).Select(i =>
            add.ApplyAsync([i, i], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(2) }, ct: Ct)));
        AsyncResult now = await add.DelayAsync(20, 22);
        using var stop = new CancellationTokenSource();
        var worker = new CeleriacWorker(app);
        Task run = worker.RunAsync(stop.Token);

        Assert.Equal(42, await now.GetAsync<int>(TimeSpan.FromSeconds(1.5), Ct));
        foreach (AsyncResult r in later)
        {
            Assert.Equal(TaskStates.Pending, await r.GetStateAsync(Ct));
        }
        for (int i = 0; i < later.Length; i++)
        {
            Assert.Equal(2 * i, await later[i].GetAsync<int>(TimeSpan.FromSeconds(15), Ct));
        }

        await stop.CancelAsync();
        await run;
    }

    /// <summary>
    /// With two queues a RabbitMQ worker splits its prefetch between them (a per-consumer limit): ETA tasks filling
    /// one queue's share must not stop that queue's immediate tasks until the ETA comes.
    /// </summary>
    [Theory]
    [MemberData(nameof(RealBrokers))]
    public async Task EtaTasksFillingOneOfTwoQueues_ImmediateTaskOnThatQueueRunsAtOnce(string broker)
    {
        string busy = "eta-busy-" + Guid.NewGuid().ToString("N")[..8];
        string other = "eta-other-" + Guid.NewGuid().ToString("N")[..8];
        await using CeleriacApp app = await _brokers.NewAppAsync(broker, o =>
        {
            o.Queues.Add(busy);
            o.Queues.Add(other);
            o.Concurrency = 2;
            o.PrefetchMultiplier = 1;
            o.ResultBackend = _brokers.SharedResultBackend(broker) ?? o.ResultBackend;
        });
        app.Task("t.echo", (string name) => name);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        AsyncResult[] later = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => app.SendTaskAsync(
            "t.echo", ["later" + i], options: new ApplyOptions { Queue = busy, Countdown = TimeSpan.FromSeconds(60) }, ct: Ct)));
        AsyncResult now = await app.SendTaskAsync("t.echo", ["now"], options: new ApplyOptions { Queue = busy }, ct: Ct);
        AsyncResult elsewhere = await app.SendTaskAsync("t.echo", ["elsewhere"], options: new ApplyOptions { Queue = other }, ct: Ct);

        Assert.Equal("elsewhere", await elsewhere.GetAsync<string>(s_wait, Ct));
        Assert.Equal("now", await now.GetAsync<string>(s_wait, Ct));
        foreach (AsyncResult r in later)
        {
            Assert.Equal(TaskStates.Pending, await r.GetStateAsync(Ct));
        }
    }
}
