using System.Collections.Concurrent;
using Celeriac.Events;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Events;

/// <summary>
/// A worker with task events on (<c>-E</c>) on a real store, watched by an <see cref="EventReceiver"/> feeding a
/// <see cref="ClusterState"/>, as a monitor would: the worker shows online, every task shows the state its events
/// say, and a warm stop shows the worker offline at once. On the in-process broker, SQLite, Redis and RabbitMQ.
/// </summary>
public sealed class EventsWorkerTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "events");
    private readonly string _queue = "events-" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _memory = "memory://events-" + Guid.NewGuid().ToString("N");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Stores => ["memory", .. TestBrokers.Names];

    public void Dispose() => _brokers.Dispose();

    private string? _url;

    /// <summary>Every app of a test on one store: Redis's URL names a random database per call, so it is taken once.</summary>
    private async Task<CeleriacApp> NewAppAsync(string store, Action<CeleriacOptions>? configure = null)
    {
        _url ??= store == "memory" ? _memory : await _brokers.UrlAsync(store);
        var options = new CeleriacOptions
        {
            BrokerUrl = _url,
            DefaultQueue = _queue,
            Concurrency = 2,
        };
        configure?.Invoke(options);
        return new CeleriacApp(options);
    }

    private static void AddTasks(CeleriacApp app)
    {
        app.Task("ev.add", (int x, int y) => x + y);
        app.Task("ev.fail", string (string why) => throw new InvalidOperationException("boom: " + why));
        app.Task("ev.retry_once", async (TaskContext context) =>
            context.Retries == 0 ? throw await context.RetryAsync(new KeyNotFoundException("transient"), countdown: TimeSpan.FromMilliseconds(200)) : "second time");
        app.Task("ev.wait", async (CancellationToken ct) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(30), ct);
            return "slept";
        });
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task WorkerWithTaskEvents_ReceiverAndClusterState_SeeWorkerOnlineEveryTaskStateAndOfflineAfterWarmStop(string store)
    {
        string node = "events-" + Guid.NewGuid().ToString("N")[..8] + "@test";
        await using CeleriacApp client = await NewAppAsync(store);
        CeleriacApp workerApp = await NewAppAsync(store, o =>
        {
            o.TaskEvents = true;
            o.NodeName = node;
        });
        AddTasks(workerApp);

        var state = new ClusterState();
        var seen = new ConcurrentQueue<CeleryEvent>();
        var receiver = new EventReceiver(client);
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task reading = Task.Run(async () =>
        {
            await foreach (CeleryEvent e in receiver.ReadAsync(stopReading.Token))
            {
                seen.Enqueue(e);
                state.Apply(e);
            }
        }, Ct);
        await receiver.Subscribed.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        RunningWorker worker = await RunningWorker.StartAsync(workerApp);
        try
        {
            Assert.True(await Poll.UntilAsync(() => state.GetWorker(node)?.Alive == true, TimeSpan.FromSeconds(10)), "the worker never showed online");

            AsyncResult add = await client.SendTaskAsync("ev.add", [2, 3], ct: Ct);
            AsyncResult fail = await client.SendTaskAsync("ev.fail", ["deliberate"], ct: Ct);
            AsyncResult retry = await client.SendTaskAsync("ev.retry_once", ct: Ct);
            string revokedId = Guid.NewGuid().ToString();
            await client.RevokeAsync([revokedId], Ct);
            Assert.True(await Poll.UntilAsync(() => worker.Worker.Revoked.Contains(revokedId), TimeSpan.FromSeconds(10)), "the worker never heard the revoke");
            AsyncResult revoked = await client.SendTaskAsync("ev.add", [1, 1], options: new ApplyOptions { TaskId = revokedId }, ct: Ct);
            AsyncResult waiting = await client.SendTaskAsync("ev.wait", ct: Ct);

            Assert.Equal(5, await add.GetAsync<int>(TimeSpan.FromSeconds(15), Ct));
            await Assert.ThrowsAsync<TaskFailedException>(() => fail.GetAsync<string>(TimeSpan.FromSeconds(15), Ct));
            Assert.Equal("second time", await retry.GetAsync<string>(TimeSpan.FromSeconds(15), Ct));
            Assert.True(await Poll.UntilAsync(() => state.GetTask(waiting.Id)?.State == TaskStates.Started, TimeSpan.FromSeconds(15)), "ev.wait never showed STARTED");
            await client.RevokeAsync([waiting.Id], terminate: true, Ct);

            string[] ids = [add.Id, fail.Id, retry.Id, revokedId, waiting.Id];
            bool allFinal = await Poll.UntilAsync(() => ids.All(id => state.GetTask(id) is { Ready: true }), TimeSpan.FromSeconds(15));
            Assert.True(allFinal, "states: " + string.Join(", ", ids.Select(id => $"{id}={state.GetTask(id)?.State}")));

            ClusterTask added = state.GetTask(add.Id)!;
            Assert.Equal((TaskStates.Success, "ev.add", "(2, 3)", "{}", "5", node), (added.State, added.Name, added.Args, added.Kwargs, added.Result, added.Worker));
            Assert.NotNull(added.Runtime);
            Assert.InRange(added.Runtime.Value, 0, 5);
            Assert.NotNull(added.Received);
            Assert.NotNull(added.Started);
            Assert.NotNull(added.Succeeded);
            Assert.True(added.Received <= added.Started && added.Started <= added.Succeeded, "received, started, succeeded in order");
            Assert.Equal(["task-received", "task-started", "task-succeeded"], added.Timeline.Select(t => t.Type));

            ClusterTask failed = state.GetTask(fail.Id)!;
            Assert.Equal(TaskStates.Failure, failed.State);
            Assert.Equal("InvalidOperationException('boom: deliberate')", failed.Exception);
            Assert.Contains("boom: deliberate", failed.Traceback, StringComparison.Ordinal);
            Assert.NotNull(failed.Failed);

            ClusterTask retried = state.GetTask(retry.Id)!;
            Assert.Equal((TaskStates.Success, "'second time'"), (retried.State, retried.Result));
            Assert.NotNull(retried.Retried);

            // The retry is sent from inside the first run, so the second task-received may come before task-retried
            // (as with Celery); the state's precedence rules end at SUCCESS either way.
            Assert.Equal(
                ["task-received", "task-received", "task-retried", "task-started", "task-started", "task-succeeded"],
                retried.Timeline.Select(t => t.Type).Order(StringComparer.Ordinal));
            Assert.Equal(1, retried.Retries);

            ClusterTask skipped = state.GetTask(revokedId)!;
            Assert.Equal(TaskStates.Revoked, skipped.State);
            Assert.Equal(["task-revoked"], skipped.Timeline.Select(t => t.Type));
            CeleryEvent skippedEvent = Assert.Single(seen, e => e.Uuid == revokedId);
            Assert.Equal((false, false), (skippedEvent.GetBoolean("terminated"), skippedEvent.GetBoolean("expired")));
            Assert.Null(skippedEvent.GetInt64("signum"));

            ClusterTask terminated = state.GetTask(waiting.Id)!;
            Assert.Equal(TaskStates.Revoked, terminated.State);
            CeleryEvent terminatedEvent = Assert.Single(seen, e => e.Uuid == waiting.Id && e.Type == "task-revoked");
            Assert.Equal((true, 15L, false), (terminatedEvent.GetBoolean("terminated"), terminatedEvent.GetInt64("signum"), terminatedEvent.GetBoolean("expired")));

            ClusterWorker online = state.GetWorker(node)!;
            Assert.True(online.Alive);
            Assert.Equal(("celeriac", "Linux", 2.0), (online.SwIdent, online.SwSys, online.Freq));
            Assert.Equal(5, state.TasksByWorker(node).Count);
            IReadOnlyDictionary<string, int> counts = state.TaskCountsByState();
            Assert.Equal((2, 1, 2), (counts.GetValueOrDefault(TaskStates.Success), counts.GetValueOrDefault(TaskStates.Failure), counts.GetValueOrDefault(TaskStates.Revoked)));

            // Every event moved the worker app's Lamport clock on: no two carry the same value.
            long[] clocks = [.. seen.Where(e => e.Hostname == node).Select(e => e.Clock)];
            Assert.Equal(clocks.Length, clocks.Distinct().Count());
        }
        finally
        {
            await worker.DisposeAsync();
        }

        // A warm stop ends with worker-offline: the state shows the worker offline at once, not after its heartbeats expire.
        Assert.True(await Poll.UntilAsync(() => state.GetWorker(node)?.Alive == false, TimeSpan.FromSeconds(10)), "worker-offline never came");
        Assert.Contains(seen, e => e.Type == "worker-offline" && e.Hostname == node);
        await stopReading.CancelAsync();
        await reading.WaitAsync(TimeSpan.FromSeconds(10), Ct);
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task WorkerWithoutTaskEvents_SendsWorkerEventsOnly_AndWithoutHeartbeatNothing(string store)
    {
        string node = "quiet-" + Guid.NewGuid().ToString("N")[..8] + "@test";
        string silent = "silent-" + Guid.NewGuid().ToString("N")[..8] + "@test";
        await using CeleriacApp client = await NewAppAsync(store);
        var seen = new ConcurrentQueue<CeleryEvent>();
        var receiver = new EventReceiver(client) { WakeupWorkers = false };
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task reading = Task.Run(async () =>
        {
            await foreach (CeleryEvent e in receiver.ReadAsync(stopReading.Token))
            {
                seen.Enqueue(e);
            }
        }, Ct);
        await receiver.Subscribed.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        CeleriacApp workerApp = await NewAppAsync(store, o => o.NodeName = node);
        CeleriacApp silentApp = await NewAppAsync(store, o =>
        {
            o.NodeName = silent;
            o.WithoutHeartbeat = true;
        });
        AddTasks(workerApp);
        AddTasks(silentApp);
        await using (RunningWorker worker = await RunningWorker.StartAsync(workerApp))
        await using (RunningWorker quiet = await RunningWorker.StartAsync(silentApp))
        {
            AsyncResult[] sent = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => client.SendTaskAsync("ev.add", [i, i], ct: Ct)));
            foreach (AsyncResult r in sent)
            {
                await r.GetAsync<int>(TimeSpan.FromSeconds(15), Ct);
            }
        }

        Assert.True(await Poll.UntilAsync(() => seen.Any(e => e.Type == "worker-offline" && e.Hostname == node), TimeSpan.FromSeconds(10)), "worker-offline never came");
        await stopReading.CancelAsync();
        await reading.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        // As Celery's worker without -E: worker events, and no task event at all; --without-heartbeat: nothing.
        Assert.Equal(["worker-online", "worker-offline"], seen.Where(e => e.Hostname == node && e.Type != "worker-heartbeat").Select(e => e.Type));
        Assert.DoesNotContain(seen, e => e.Group == "task" && (e.Hostname == node || e.Hostname == silent));
        Assert.DoesNotContain(seen, e => e.Hostname == silent);
    }
}
