using System.Collections.Concurrent;
using System.Diagnostics;
using Celeriac.TestServers;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Conformance;

/// <summary>A node whose consumer_timeout is 3 s (RabbitMQ's default is 30 min), checked every 0.5 s.</summary>
public sealed class ShortConsumerTimeoutFixture : IAsyncLifetime
{
    public RabbitMqServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await RabbitMqServer.StartAsync("{consumer_timeout, 3000}, {channel_tick_interval, 500}");

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// RabbitMQ closes a channel whose delivery stays unacked past its consumer_timeout, which kills Celery workers that
/// hold ETA tasks (celery#6760). Celeriac parks such deliveries before the timeout; and if a channel is closed anyway,
/// the worker drops what it had not started, consumes again, and runs each task once.
/// </summary>
public sealed class RabbitMqConsumerTimeoutTests(ShortConsumerTimeoutFixture rabbit) : IClassFixture<ShortConsumerTimeoutFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const int ParkedEventId = 504;
    private const int ChannelLostEventId = 506;

    private sealed record Run(CeleriacApp App, ConcurrentDictionary<string, int> Runs, CollectingLoggerFactory Logs);

    private Run NewApp(string urlQuery, Action<CeleriacOptions>? configure = null)
    {
        var logs = new CollectingLoggerFactory();
        var options = new CeleriacOptions
        {
            BrokerUrl = rabbit.Server.Url() + urlQuery,
            DefaultQueue = "ct-" + Guid.NewGuid().ToString("N")[..8],
            Concurrency = 1,
            PrefetchMultiplier = 1,
            LoggerFactory = logs,
        };
        configure?.Invoke(options);
        var app = new CeleriacApp(options);
        var runs = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        app.Task("tasks.mark", (string name) =>
        {
            runs.AddOrUpdate(name, 1, (_, n) => n + 1);
            return name;
        });
        return new Run(app, runs, logs);
    }

    /// <summary>
    /// An ETA task held four times the consumer timeout, with the timeout given in the URL: it is parked before each
    /// timeout, the channel is never closed, the task runs once at its ETA, and an immediate task sent meanwhile runs at once.
    /// </summary>
    [Fact]
    public async Task EtaHeldPastTheConsumerTimeout_IsParked_ChannelSurvives_RunsOnce()
    {
        Run run = NewApp("?consumer_timeout=3");
        await using CeleriacApp app = run.App;
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        var clock = Stopwatch.StartNew();
        AsyncResult later = await app.SendTaskAsync("tasks.mark", ["later"], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(12) }, ct: Ct);

        await Task.Delay(TimeSpan.FromSeconds(7), Ct);
        var sent = Stopwatch.StartNew();
        AsyncResult now = await app.SendTaskAsync("tasks.mark", ["now"], ct: Ct);
        Assert.Equal("now", await now.GetAsync<string>(TimeSpan.FromSeconds(10), Ct));
        Assert.True(sent.Elapsed < TimeSpan.FromSeconds(3), $"an immediate task waited {sent.Elapsed} behind a held ETA task");

        Assert.Equal("later", await later.GetAsync<string>(TimeSpan.FromSeconds(30), Ct));
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(11.5), $"the ETA task ran after {clock.Elapsed}, before its ETA");
        await Task.Delay(TimeSpan.FromSeconds(2), Ct);

        Assert.Equal(1, run.Runs["later"]);
        Assert.Equal(1, run.Runs["now"]);
        Assert.True(run.Logs.Count(ParkedEventId) >= 2, $"parked {run.Logs.Count(ParkedEventId)} time(s) over 12 s with a 1.5 s park interval");
        Assert.Equal(0, run.Logs.Count(ChannelLostEventId));
    }

    /// <summary>
    /// Without parking (the URL claims a 1 h timeout) the broker does close the channel, as it does to Celery: the worker
    /// logs it, drops the ETA task it held (the broker redelivers it), consumes again, and still runs every task once.
    /// </summary>
    [Fact]
    public async Task ChannelClosedByTheBroker_WorkerConsumesAgain_EveryTaskRunsOnce()
    {
        Run run = NewApp("?consumer_timeout=3600");
        await using CeleriacApp app = run.App;
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        var clock = Stopwatch.StartNew();
        AsyncResult later = await app.SendTaskAsync("tasks.mark", ["later"], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(9) }, ct: Ct);

        await Task.Delay(TimeSpan.FromSeconds(5), Ct);
        AsyncResult now = await app.SendTaskAsync("tasks.mark", ["now"], ct: Ct);
        Assert.Equal("now", await now.GetAsync<string>(TimeSpan.FromSeconds(15), Ct));
        Assert.Equal("later", await later.GetAsync<string>(TimeSpan.FromSeconds(30), Ct));
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(8.5), $"the ETA task ran after {clock.Elapsed}, before its ETA");
        await Task.Delay(TimeSpan.FromSeconds(2), Ct);

        Assert.True(run.Logs.Count(ChannelLostEventId) >= 1, "the broker never closed the channel: this test shows nothing");
        Assert.Equal(1, run.Runs["later"]);
        Assert.Equal(1, run.Runs["now"]);
    }

    /// <summary>
    /// Quorum queues (Celery 5.5's task_default_queue_type) refuse a channel-wide prefetch: the queue is declared as a
    /// quorum queue, and ETA tasks filling the whole prefetch window still do not hold back immediate tasks.
    /// </summary>
    [Fact]
    public async Task QuorumQueue_Declared_EtaTasksDoNotStarveImmediateOnes()
    {
        Run run = NewApp("?consumer_timeout=3", o => o.QueueType = "quorum");
        await using CeleriacApp app = run.App;
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        string queues = await rabbit.Server.CtlAsync("list_queues", "-q", "--no-table-headers", "name", "type", "durable");
        Assert.Contains($"{app.Options.DefaultQueue}\tquorum\ttrue", queues, StringComparison.Ordinal);

        AsyncResult[] later = await Task.WhenAll(Enumerable.Range(0, 10).Select(i =>
            app.SendTaskAsync("tasks.mark", ["later" + i], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(8) }, ct: Ct)));
        AsyncResult[] now = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => app.SendTaskAsync("tasks.mark", ["now" + i], ct: Ct)));
        var clock = Stopwatch.StartNew();
        foreach (AsyncResult r in now)
        {
            await r.GetAsync<string>(TimeSpan.FromSeconds(20), Ct);
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"immediate tasks took {clock.Elapsed} behind 10 ETA tasks with a prefetch of 1");
        foreach (AsyncResult r in later)
        {
            await r.GetAsync<string>(TimeSpan.FromSeconds(30), Ct);
        }

        Assert.All(run.Runs, kv => Assert.Equal(1, kv.Value));
        Assert.Equal(15, run.Runs.Count);
    }
}
