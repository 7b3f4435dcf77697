using System.Collections.Concurrent;
using System.Diagnostics;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>Revoke with terminate=true, and the revoked ids kept across a restart in the state file, on SQLite, Redis and RabbitMQ.</summary>
public sealed class RevokeTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "revoke");
    private readonly string _queue = "revoke-" + Guid.NewGuid().ToString("N")[..8];
    private readonly ConcurrentDictionary<string, int> _runs = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<string> _cleanedUp = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public void Dispose() => _brokers.Dispose();

    private async Task<CeleriacApp> NewAppAsync(string broker, string? stateDb = null, CollectingLoggerFactory? logs = null)
    {
        var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = await _brokers.UrlAsync(broker),
            DefaultQueue = _queue,
            Concurrency = 1,
            TrackStarted = true,
            StateDb = stateDb,
            LoggerFactory = logs,
        });
        app.Task("tasks.wait", async (string name, CancellationToken ct) =>
        {
            _runs.AddOrUpdate(name, 1, (_, n) => n + 1);
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(30), ct);
                return name;
            }
            finally
            {
                _cleanedUp.Add(name);
            }
        });
        app.Task("tasks.mark", (string name) =>
        {
            _runs.AddOrUpdate(name, 1, (_, n) => n + 1);
            return name;
        });
        return app;
    }

    private static async Task WaitForStateAsync(AsyncResult result, string state)
    {
        await Poll.UntilAsync(async () => await result.GetStateAsync(Ct) == state, TimeSpan.FromSeconds(15));

        Assert.Equal(state, result.State);
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task RevokeWithTerminate_RunningTaskIsCancelledCleansUpAndEndsRevoked_SlotFreeAgain(string broker)
    {
        await using CeleriacApp app = await NewAppAsync(broker);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        AsyncResult running = await app.SendTaskAsync("tasks.wait", ["long"], ct: Ct);
        await WaitForStateAsync(running, TaskStates.Started);

        var clock = Stopwatch.StartNew();
        await app.RevokeAsync([running.Id], terminate: true, Ct);
        TaskFailedException revoked = await Assert.ThrowsAsync<TaskFailedException>(() => running.GetAsync<string>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(TaskStates.Revoked, running.State);
        Assert.Equal(("TaskRevokedError", "terminated"), (revoked.ExceptionType, revoked.RemoteMessage));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"terminate took {clock.Elapsed}");
        Assert.Contains("long", _cleanedUp);

        // The only slot is free again, and a plain revoke of a task that is not running terminates nothing.
        Assert.Equal("next", await (await app.SendTaskAsync("tasks.mark", ["next"], ct: Ct)).GetAsync<string>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal("terminate: tasks unknown", worker.Worker.Revoke(["not-running"], terminate: true));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task StateDb_RevokedIdsSurviveARestart_TaskSentAfterwardsIsSkipped(string broker)
    {
        string stateDb = Path.Join(_brokers.Directory, "worker.state");
        string id = Guid.NewGuid().ToString();
        await using (CeleriacApp first = await NewAppAsync(broker, stateDb))
        {
            await using RunningWorker worker = await RunningWorker.StartAsync(first);
            await first.RevokeAsync([id], Ct);
            await Poll.UntilAsync(() => worker.Worker.Revoked.Contains(id), TimeSpan.FromSeconds(10));

            Assert.True(worker.Worker.Revoked.Contains(id));
            await worker.StopAsync();
        }

        Assert.True(File.Exists(stateDb));
        var logs = new CollectingLoggerFactory();
        await using CeleriacApp second = await NewAppAsync(broker, stateDb, logs);
        await using RunningWorker restarted = await RunningWorker.StartAsync(second);
        Assert.True(restarted.Worker.Revoked.Contains(id));

        AsyncResult skipped = await second.SendTaskAsync("tasks.mark", ["revoked-before-restart"], options: new ApplyOptions { TaskId = id }, ct: Ct);
        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => skipped.GetAsync<string>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(("TaskRevokedError", "revoked"), (error.ExceptionType, error.RemoteMessage));
        Assert.False(_runs.ContainsKey("revoked-before-restart"));
        Assert.Equal(1, logs.Count(31));
    }

    [Fact]
    public async Task StateDb_Unreadable_WorkerStartsAndSaysSo()
    {
        string stateDb = Path.Join(_brokers.Directory, "broken.state");
        await File.WriteAllTextAsync(stateDb, "{not json", Ct);
        var logs = new CollectingLoggerFactory();
        await using CeleriacApp app = await NewAppAsync("sqlite", stateDb, logs);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        Assert.Equal("ok", await (await app.SendTaskAsync("tasks.mark", ["ok"], ct: Ct)).GetAsync<string>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(1, logs.Count(32));
        Assert.Equal(0, worker.Worker.Revoked.Count);
    }
}
