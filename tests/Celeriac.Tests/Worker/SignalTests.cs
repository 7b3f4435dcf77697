using System.Collections.Concurrent;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>Celery's signals as .NET events, raised by the client and the worker, on SQLite, Redis and RabbitMQ.</summary>
public sealed class SignalTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "signals");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public void Dispose() => _brokers.Dispose();

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task Signals_EachRaisedWithWhatItCarries_AFailingHandlerHarmsNothing(string broker)
    {
        var logs = new CollectingLoggerFactory();
        await using var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = await _brokers.UrlAsync(broker),
            DefaultQueue = "signals-" + Guid.NewGuid().ToString("N")[..8],
            Concurrency = 1,
            LoggerFactory = logs,
        });
        app.Task("tasks.add", (long x, long y) => x + y);
        app.Task("tasks.fail", long () => throw new InvalidOperationException("boom"));
        var seen = new ConcurrentQueue<string>();
        CeleriacSignals s = app.Signals;
        s.BeforeTaskPublish += (_, e) => seen.Enqueue($"before_task_publish {e.TaskName} {e.Queue == app.Options.DefaultQueue}");
        s.AfterTaskPublish += (_, e) => seen.Enqueue($"after_task_publish {e.TaskName}");
        s.TaskPrerun += (_, e) => seen.Enqueue($"task_prerun {e.TaskName} {e.Context!.Id == e.TaskId}");
        s.TaskPostrun += (_, e) => seen.Enqueue($"task_postrun {e.TaskName} {e.State}");
        s.TaskSuccess += (_, e) => seen.Enqueue($"task_success {e.TaskName} {e.Result}");
        s.TaskFailure += (_, e) => seen.Enqueue($"task_failure {e.TaskName} {e.Exception!.Message}");
        s.TaskUnknown += (_, e) => seen.Enqueue($"task_unknown {e.TaskName}");
        s.TaskRevoked += (_, e) => seen.Enqueue($"task_revoked {e.TaskName} {e.Reason}");
        s.WorkerInit += (_, e) => seen.Enqueue($"worker_init {e.Worker.NodeName.Length > 0}");
        s.WorkerReady += (_, _) => seen.Enqueue("worker_ready");
        s.WorkerShutdown += (_, _) => seen.Enqueue("worker_shutdown");
        s.TaskSuccess += (_, _) => throw new InvalidOperationException("a broken handler");

        RunningWorker worker = await RunningWorker.StartAsync(app);
        await using (worker)
        {
            Assert.Equal(5, await (await app.SendTaskAsync("tasks.add", [2, 3], ct: Ct)).GetAsync<long>(TimeSpan.FromSeconds(10), Ct));
            await Assert.ThrowsAsync<TaskFailedException>(async () => await (await app.SendTaskAsync("tasks.fail", ct: Ct)).GetAsync<long>(TimeSpan.FromSeconds(10), Ct));
            await Assert.ThrowsAsync<TaskFailedException>(async () => await (await app.SendTaskAsync("tasks.nobody", ct: Ct)).GetAsync<long>(TimeSpan.FromSeconds(10), Ct));
            string id = Guid.NewGuid().ToString();
            worker.Worker.Revoke([id]);
            await Assert.ThrowsAsync<TaskFailedException>(async () =>
                await (await app.SendTaskAsync("tasks.add", [1, 1], options: new ApplyOptions { TaskId = id }, ct: Ct)).GetAsync<long>(TimeSpan.FromSeconds(10), Ct));
            await worker.StopAsync();
        }

        string[] expected =
        [
            "worker_init True", "worker_ready",
            "before_task_publish tasks.add True", "after_task_publish tasks.add",
            "task_prerun tasks.add True", "task_success tasks.add 5", "task_postrun tasks.add SUCCESS",
            "before_task_publish tasks.fail True", "after_task_publish tasks.fail",
            "task_prerun tasks.fail True", "task_failure tasks.fail boom", "task_postrun tasks.fail FAILURE",
            "before_task_publish tasks.nobody True", "after_task_publish tasks.nobody", "task_unknown tasks.nobody",
            "before_task_publish tasks.add True", "after_task_publish tasks.add", "task_revoked tasks.add revoked",
            "worker_shutdown",
        ];

        // All of them, once; the worker's own in order (a result may reach the client before its postrun signal,
        // so the client's publish signals may interleave).
        Assert.Equal(expected.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        Assert.Equal(expected.Where(l => !l.Contains("publish", StringComparison.Ordinal)), seen.Where(l => !l.Contains("publish", StringComparison.Ordinal)));
        Assert.Equal(1, logs.Count(35));
    }

    [Fact]
    public async Task TaskRetry_RaisedWithTheReason_PostrunSaysRetry()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = await _brokers.UrlAsync("sqlite"), Concurrency = 1 });
        app.Task("tasks.again", async (TaskContext context) =>
            context.Retries == 0 ? throw await context.RetryAsync(new TimeoutException("slow"), countdown: TimeSpan.Zero) : context.Retries);
        var seen = new ConcurrentQueue<string>();
        app.Signals.TaskRetry += (_, e) => seen.Enqueue($"task_retry {e.Exception!.Message}");
        app.Signals.TaskPostrun += (_, e) => seen.Enqueue($"task_postrun {e.State}");
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        Assert.Equal(1, await (await app.SendTaskAsync("tasks.again", ct: Ct)).GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
        await worker.StopAsync();
        Assert.Equal(["task_retry slow", "task_postrun RETRY", "task_postrun SUCCESS"], seen);
    }
}
