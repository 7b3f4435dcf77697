using System.Text.Json;
using Celeriac.Control;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;
using Celeriac.Worker;
using Microsoft.Data.Sqlite;

namespace Celeriac.Tests.RemoteControl;

/// <summary>
/// Celery's remote control against running Celeriac workers on each broker, through <c>app.Control</c>: what
/// <c>celery inspect</c> and <c>celery control</c> see and change. Each test has its own queues and node names, and
/// names its workers as the destination, so that workers of other tests on the same broker stay out of it.
/// </summary>
public abstract class RemoteControlTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);
    private static readonly ControlOptions s_patient = new() { Timeout = TimeSpan.FromSeconds(10) };

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Options of an app on the broker scope <paramref name="scope"/> (apps made with one scope share it).</summary>
    protected abstract CeleriacOptions Options(string scope);

    /// <summary>Whether workers mingle at start-up on this broker (as Celery's: Redis and AMQP only).</summary>
    protected virtual bool Mingles => true;

    private sealed class Rig : IAsyncDisposable
    {
        public required CeleriacApp App { get; init; }

        public required RunningWorker Worker { get; init; }

        public required TaskCompletionSource Gate { get; init; }

        public string Node => Worker.Worker.NodeName;

        public ControlOptions To => s_patient with { Destination = [Node] };

        public async ValueTask DisposeAsync()
        {
            Gate.TrySetResult();
            await Worker.DisposeAsync();
            await App.DisposeAsync();
        }
    }

    private async Task<Rig> StartAsync(string? scope = null, Action<CeleriacOptions>? configure = null, string? node = null)
    {
        scope ??= Guid.NewGuid().ToString("N")[..10];
        CeleriacOptions options = Options(scope);
        options.Concurrency = 1;
        options.PrefetchMultiplier = 4;
        options.NodeName = node ?? "rc-" + Guid.NewGuid().ToString("N")[..8] + "@test";
        configure?.Invoke(options);
        var app = new CeleriacApp(options);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task("rc.add", (int x, int y) => x + y);
        app.Task("rc.wait", async (string label, CancellationToken ct) =>
        {
            await gate.Task.WaitAsync(ct);
            return label;
        });
        app.Task("rc.limited", (int x) => x, new TaskOptions { RateLimit = "10/s" });
        return new Rig { App = app, Worker = await RunningWorker.StartAsync(app), Gate = gate };
    }

    [Fact]
    public async Task Ping_TwoWorkers_EachAnswersPongUnderItsNodeName()
    {
        string scope = Guid.NewGuid().ToString("N")[..10];
        await using Rig a = await StartAsync(scope);
        await using Rig b = await StartAsync(scope);

        IReadOnlyDictionary<string, ControlReply> replies = await a.App.Control.PingAsync(s_patient with { Destination = [a.Node, b.Node] }, Ct);

        Assert.Equal(new[] { a.Node, b.Node }.Order(StringComparer.Ordinal), replies.Keys.Order(StringComparer.Ordinal));
        Assert.All(replies.Values, r => Assert.Equal("pong", r.Ok));
    }

    [Fact]
    public async Task Inspect_ActiveReservedScheduledQueryTask_ListTheRequestsInCelerysShape()
    {
        // A slot reads a message's ETA when it takes it: the ETA task first, then two that hold both slots, then one that waits.
        await using Rig rig = await StartAsync(configure: o => o.Concurrency = 2);
        DateTimeOffset eta = TimeProvider.System.GetUtcNow().AddHours(1);
        AsyncResult later = await rig.App.SendTaskAsync("rc.add", [4, 5], options: new ApplyOptions { Eta = eta }, ct: Ct);
        Assert.True(await Poll.UntilAsync(() => rig.Worker.Worker.GetRequests(RequestState.Scheduled).Count == 1, s_wait));
        AsyncResult running = await rig.App.SendTaskAsync("rc.wait", ["running"], ct: Ct);
        AsyncResult other = await rig.App.SendTaskAsync("rc.wait", ["other"], ct: Ct);
        Assert.True(await Poll.UntilAsync(() => rig.Worker.Worker.GetRequests(RequestState.Active).Count == 2, s_wait));
        AsyncResult waiting = await rig.App.SendTaskAsync("rc.add", [2, 3], ct: Ct);
        Assert.True(await Poll.UntilAsync(() => rig.Worker.Worker.GetRequests(RequestState.Reserved).Count == 1, s_wait));
        Inspector inspect = rig.App.Control.Inspect(rig.To);

        TaskRequestInfo active = Assert.Single((await inspect.ActiveAsync(ct: Ct))[rig.Node], r => r.Id == running.Id);
        TaskRequestInfo reserved = Assert.Single((await inspect.ReservedAsync(Ct))[rig.Node]);
        ScheduledTaskInfo scheduled = Assert.Single((await inspect.ScheduledAsync(Ct))[rig.Node]);
        IReadOnlyDictionary<string, TaskQueryInfo> query = (await inspect.QueryTaskAsync([running.Id, waiting.Id, later.Id, "unknown-id"], Ct))[rig.Node];
        ReplyDictionary<JsonElement> raw = await inspect.AskAsync("active", ct: Ct);

        Assert.Equal((running.Id, "rc.wait", "[\"running\"]", rig.Node, true), (active.Id, active.Name, active.Args.GetRawText(), active.Hostname, active.Acknowledged));
        Assert.InRange(active.TimeStart!.Value, TimeProvider.System.GetUtcNow().AddMinutes(-1), TimeProvider.System.GetUtcNow().AddSeconds(1));
        Assert.Equal((waiting.Id, "rc.add", "[2,3]", false), (reserved.Id, reserved.Name, reserved.Args.GetRawText().Replace(" ", "", StringComparison.Ordinal), reserved.Acknowledged));
        Assert.Equal((later.Id, 6), (scheduled.Request.Id, scheduled.Priority));
        Assert.InRange(scheduled.Eta!.Value, eta.AddSeconds(-1), eta.AddSeconds(1));
        Assert.Equal(("active", "reserved", "reserved"), (query[running.Id].State, query[waiting.Id].State, query[later.Id].State));
        Assert.Equal(3, query.Count);
        Assert.Equal(2, (await inspect.ActiveAsync(ct: Ct))[rig.Node].Count);
        string[] celeryKeys = ["acknowledged", "args", "delivery_info", "hostname", "id", "kwargs", "name", "time_start", "type", "worker_pid"];
        Assert.Equal(celeryKeys, raw[rig.Node][0].EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray());

        rig.Gate.SetResult();
        Assert.Equal("running", await running.GetAsync<string>(s_wait, Ct));
        Assert.Equal("other", await other.GetAsync<string>(s_wait, Ct));
        Assert.Equal(5, await waiting.GetAsync<int>(s_wait, Ct));
    }

    [Fact]
    public async Task Inspect_EtaTaskArrivingWhileEverySlotIsBusy_IsScheduledNotReserved()
    {
        // The only slot is busy: the ETA task is scheduled as the worker takes it (as Celery's consumer does), not
        // reserved until a slot reads it.
        await using Rig rig = await StartAsync(configure: o => o.Concurrency = 1);
        AsyncResult running = await rig.App.SendTaskAsync("rc.wait", ["running"], ct: Ct);
        Assert.True(await Poll.UntilAsync(() => rig.Worker.Worker.GetRequests(RequestState.Active).Count == 1, s_wait));
        DateTimeOffset eta = TimeProvider.System.GetUtcNow().AddHours(1);
        AsyncResult later = await rig.App.SendTaskAsync("rc.add", [4, 5], options: new ApplyOptions { Eta = eta }, ct: Ct);
        AsyncResult waiting = await rig.App.SendTaskAsync("rc.add", [2, 3], ct: Ct);
        Assert.True(await Poll.UntilAsync(() => rig.Worker.Worker.GetRequests(RequestState.Reserved).Count == 1 && rig.Worker.Worker.GetRequests(RequestState.Scheduled).Count == 1, s_wait));
        Inspector inspect = rig.App.Control.Inspect(rig.To);

        TaskRequestInfo reserved = Assert.Single((await inspect.ReservedAsync(Ct))[rig.Node]);
        ScheduledTaskInfo scheduled = Assert.Single((await inspect.ScheduledAsync(Ct))[rig.Node]);
        Assert.Equal(waiting.Id, reserved.Id);
        Assert.Equal((later.Id, "rc.add", 6), (scheduled.Request.Id, scheduled.Request.Name, scheduled.Priority));
        Assert.InRange(scheduled.Eta!.Value, eta.AddSeconds(-1), eta.AddSeconds(1));

        rig.Gate.SetResult();
        Assert.Equal("running", await running.GetAsync<string>(s_wait, Ct));
        Assert.Equal(5, await waiting.GetAsync<int>(s_wait, Ct));
    }

    [Fact]
    public async Task Inspect_ScheduledRightAfterSendingAnEtaTask_ListsIt()
    {
        // Celery's test_scheduled: the inspect follows the task at once. The control message travels apart from the
        // task's (Redis: pub/sub on another connection), yet the worker answers as if it had read the task first.
        await using Rig rig = await StartAsync();
        if (rig.App.Transport is not Celeriac.Transport.ICatchUpTransport)
        {
            Assert.Skip($"{rig.App.Transport.GetType().Name} has no catch-up (ICatchUpTransport)");
            return;
        }

        Inspector inspect = rig.App.Control.Inspect(rig.To);
        var sent = new List<string>();
        for (int i = 0; i < 10; i++)
        {
            AsyncResult later = await rig.App.SendTaskAsync("rc.add", [i, i], options: new ApplyOptions { Countdown = TimeSpan.FromHours(1) }, ct: Ct);
            sent.Add(later.Id);
            IReadOnlyList<ScheduledTaskInfo> scheduled = (await inspect.ScheduledAsync(Ct))[rig.Node];
            Assert.True(sent.Order(StringComparer.Ordinal).SequenceEqual(scheduled.Select(s => s.Request.Id).Order(StringComparer.Ordinal)),
                $"after {i + 1} sent: listed [{string.Join(", ", scheduled.Select(s => s.Request.Id))}], sent [{string.Join(", ", sent)}]");
        }
    }

    [Fact]
    public async Task Inspect_RegisteredStatsClockConfQueuesReport_AnswerWithTheWorkersState()
    {
        await using Rig rig = await StartAsync();
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(2 * i, await (await rig.App.SendTaskAsync("rc.add", [i, i], ct: Ct)).GetAsync<int>(s_wait, Ct));
        }

        Inspector inspect = rig.App.Control.Inspect(rig.To);
        IReadOnlyList<string> registered = (await inspect.RegisteredAsync(ct: Ct))[rig.Node];
        IReadOnlyList<string> withRates = (await inspect.RegisteredAsync(["rate_limit"], Ct))[rig.Node];
        IReadOnlyList<string> withNames = (await inspect.RegisteredAsync(["name", "rate_limit"], Ct))[rig.Node];
        WorkerStats stats = (await inspect.StatsAsync(Ct))[rig.Node];
        long clock = (await inspect.ClockAsync(Ct))[rig.Node];
        JsonElement conf = (await inspect.ConfAsync(ct: Ct))[rig.Node];
        QueueInfo queue = Assert.Single((await inspect.ActiveQueuesAsync(Ct))[rig.Node]);
        string report = (await inspect.ReportAsync(Ct))[rig.Node];

        Assert.Equal(["rc.add", "rc.limited [rate_limit=10/s]", "rc.wait"], registered);
        Assert.Contains("rc.limited [rate_limit=10/s]", withRates);
        Assert.Contains("rc.add", withRates);

        // Celery's test_inspect asks for 'name': every task has one, so each line has brackets.
        Assert.Equal(["rc.add [name=rc.add]", "rc.limited [name=rc.limited rate_limit=10/s]", "rc.wait [name=rc.wait]"], withNames);
        Assert.Equal((long)Environment.ProcessId, stats.Pid);
        Assert.Equal(3, stats.Total["rc.add"]);
        Assert.Equal((1, 4), (stats.MaxConcurrency, stats.PrefetchCount));
        Assert.True(clock > 0);
        Assert.Equal(rig.App.Options.DefaultQueue, conf.GetProperty("task_default_queue").GetString());
        Assert.Equal(rig.App.Options.DefaultQueue, queue.Name);
        Assert.Contains("celeriac", report, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoke_TerminateARunningTask_ReplyNamesItAndItEndsRevoked()
    {
        await using Rig rig = await StartAsync();
        AsyncResult running = await rig.App.SendTaskAsync("rc.wait", ["forever"], ct: Ct);
        Assert.True(await Poll.UntilAsync(() => rig.Worker.Worker.GetRequests(RequestState.Active).Count == 1, s_wait));

        ControlReply reply = Assert.Single(await rig.App.Control.RevokeAsync([running.Id], terminate: true, options: rig.To with { Reply = true }, ct: Ct));

        Assert.Equal((rig.Node, "terminate: " + running.Id), (reply.Node, reply.Ok));
        Assert.True(await Poll.UntilAsync(async () => await running.GetStateAsync(Ct) == TaskStates.Revoked, s_wait));
        Assert.Contains(running.Id, (await rig.App.Control.Inspect(rig.To).RevokedAsync(Ct))[rig.Node]);
    }

    [Fact]
    public async Task Commands_BadInput_GetCelerysErrorReplies()
    {
        await using Rig rig = await StartAsync();
        ControlOptions to = rig.To with { Reply = true };

        ControlReply unknownCommand = Assert.Single(await rig.App.Control.BroadcastAsync("no_such_command", null, to, Ct));
        ControlReply missingArgument = Assert.Single(await rig.App.Control.BroadcastAsync("rate_limit", null, to, Ct));
        ControlReply unknownTask = Assert.Single(await rig.App.Control.RateLimitAsync("rc.nope", "5/s", to, Ct));
        ControlReply badRate = Assert.Single(await rig.App.Control.RateLimitAsync("rc.add", "fast", to, Ct));
        ControlReply noAutoscale = Assert.Single(await rig.App.Control.AutoscaleAsync(4, 2, to, Ct));
        ControlReply noRestart = Assert.Single(await rig.App.Control.PoolRestartAsync(to, Ct));

        Assert.Equal("KeyError('no_such_command')", unknownCommand.Error);
        Assert.Equal("TypeError(\"rate_limit() missing 1 required positional argument: 'task_name'\")", missingArgument.Error);
        Assert.Equal("unknown task", unknownTask.Error);
        Assert.StartsWith("Invalid rate limit string", badRate.Error, StringComparison.Ordinal);
        Assert.Equal("ValueError('Autoscale not enabled')", noAutoscale.Error);
        Assert.Equal("ValueError('Pool restarts not enabled')", noRestart.Error);
        Assert.Equal("pong", (await rig.App.Control.PingAsync(rig.To, Ct))[rig.Node].Ok);
    }

    [Fact]
    public async Task RateAndTimeLimitsAndPool_Changed_TheWorkerReportsTheNewValues()
    {
        await using Rig rig = await StartAsync();
        ControlOptions to = rig.To with { Reply = true };

        ControlReply rate = Assert.Single(await rig.App.Control.RateLimitAsync("rc.add", "2/m", to, Ct));
        ControlReply time = Assert.Single(await rig.App.Control.TimeLimitAsync("rc.add", 5, 10, to, Ct));
        ControlReply grow = Assert.Single(await rig.App.Control.PoolGrowAsync(2, to, Ct));
        int grown = rig.Worker.Worker.Concurrency;
        ControlReply shrink = Assert.Single(await rig.App.Control.PoolShrinkAsync(1, to, Ct));

        Assert.Equal(("new rate limit set successfully", "time limits set successfully", "pool will grow", "pool will shrink"), (rate.Ok, time.Ok, grow.Ok, shrink.Ok));
        Assert.Equal((3, 2), (grown, rig.Worker.Worker.Concurrency));
        Assert.Contains("rc.add [rate_limit=2/m time_limit=10 soft_time_limit=5]", (await rig.App.Control.Inspect(rig.To).RegisteredAsync(["rate_limit", "time_limit", "soft_time_limit"], Ct))[rig.Node]);
        Assert.Equal(2, (await rig.App.Control.Inspect(rig.To).StatsAsync(Ct))[rig.Node].MaxConcurrency);
    }

    [Fact]
    public async Task Autoscale_OnAnAutoscalingWorker_SetsTheBoundsAndRefusesPoolGrow()
    {
        await using Rig rig = await StartAsync(configure: o => o.Autoscale = "3,1");
        ControlOptions to = rig.To with { Reply = true };

        ControlReply scale = Assert.Single(await rig.App.Control.AutoscaleAsync(5, 2, to, Ct));
        ControlReply grow = Assert.Single(await rig.App.Control.PoolGrowAsync(1, to, Ct));

        Assert.Equal("autoscale now max=5 min=2", scale.Ok);
        Assert.Equal("pool_grow is not supported with autoscale. Adjust autoscale range instead.", grow.Error);
        Assert.True(await Poll.UntilAsync(() => rig.Worker.Worker.Concurrency == 2, s_wait));
    }

    [Fact]
    public async Task AddAndCancelConsumer_TheWorkerTakesFromTheQueueOnlyWhileItConsumesIt()
    {
        await using Rig rig = await StartAsync();
        string extra = rig.App.Options.DefaultQueue + "-extra";
        ControlOptions to = rig.To with { Reply = true };
        AsyncResult early = await rig.App.SendTaskAsync("rc.add", [1, 1], options: new ApplyOptions { Queue = extra }, ct: Ct);

        ControlReply add = Assert.Single(await rig.App.Control.AddConsumerAsync(extra, options: to, ct: Ct));

        Assert.Equal("add consumer " + extra, add.Ok);
        Assert.Equal(2, await early.GetAsync<int>(s_wait, Ct));
        Assert.Equal([rig.App.Options.DefaultQueue, extra], (await rig.App.Control.Inspect(rig.To).ActiveQueuesAsync(Ct))[rig.Node].Select(q => q.Name));

        ControlReply cancel = Assert.Single(await rig.App.Control.CancelConsumerAsync(extra, to, Ct));
        AsyncResult stranded = await rig.App.SendTaskAsync("rc.add", [2, 2], options: new ApplyOptions { Queue = extra }, ct: Ct);

        // A task on the queue it still consumes, sent after, has run: the one on the cancelled queue would have too.
        Assert.Equal(6, await (await rig.App.SendTaskAsync("rc.add", [3, 3], ct: Ct)).GetAsync<int>(s_wait, Ct));
        Assert.Equal("no longer consuming from " + extra, cancel.Ok);
        Assert.Equal(TaskStates.Pending, await stranded.GetStateAsync(Ct));
        Assert.Equal(1, await rig.App.Transport.GetQueueLengthAsync(extra, Ct));
    }

    [Fact]
    public async Task EnableEvents_WorkerStartedWithoutThem_SendsTaskEventsFromThenOn()
    {
        await using Rig rig = await StartAsync();
        var receiver = new Celeriac.Events.EventReceiver(rig.App);
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task reading = Task.Run(async () =>
        {
            await foreach (Celeriac.Events.CeleryEvent e in receiver.ReadAsync(stop.Token))
            {
                if (e.Hostname == rig.Node)
                {
                    seen.Enqueue(e.Type);
                }
            }
        }, Ct);
        ControlOptions to = rig.To with { Reply = true };

        ControlReply on = Assert.Single(await rig.App.Control.EnableEventsAsync(to, Ct));
        ControlReply again = Assert.Single(await rig.App.Control.EnableEventsAsync(to, Ct));
        Assert.Equal(4, await (await rig.App.SendTaskAsync("rc.add", [2, 2], ct: Ct)).GetAsync<int>(s_wait, Ct));

        Assert.True(await Poll.UntilAsync(() => seen.Contains("task-succeeded"), s_wait));
        Assert.Equal(("task events enabled", "task events already enabled"), (on.Ok, again.Ok));
        Assert.True(rig.Worker.Worker.TaskEventsEnabled);
        Assert.Equal("task events disabled", Assert.Single(await rig.App.Control.DisableEventsAsync(to, Ct)).Ok);
        Assert.False(rig.Worker.Worker.TaskEventsEnabled);
        await stop.CancelAsync();
        await reading.WaitAsync(s_wait, Ct);
    }

    [Fact]
    public async Task Shutdown_TheWorkerStopsWarmAndNoLongerAnswers()
    {
        await using Rig rig = await StartAsync();

        IReadOnlyList<ControlReply> replies = await rig.App.Control.ShutdownAsync(rig.To with { Reply = true, Timeout = TimeSpan.FromMilliseconds(500) }, Ct);

        Assert.Empty(replies);
        await rig.Worker.Run.WaitAsync(s_wait, Ct);
        Assert.Empty(await rig.App.Control.PingAsync(rig.To with { Timeout = TimeSpan.FromMilliseconds(500) }, Ct));
    }

    [Fact]
    public async Task Mingle_RevokedBeforeAWorkerStarts_HoldsOnItFromTheOtherWorker()
    {
        if (!Mingles)
        {
            Assert.Skip("Workers mingle on Redis and AMQP only, as Celery's.");
        }

        string scope = Guid.NewGuid().ToString("N")[..10];
        await using Rig first = await StartAsync(scope);
        string id = Guid.NewGuid().ToString();
        Assert.Single(await first.App.Control.RevokeAsync([id], options: first.To with { Reply = true }, ct: Ct));

        await using Rig second = await StartAsync(scope, o => o.DefaultQueue += "-second");

        Assert.Contains(id, (await second.App.Control.Inspect(second.To).RevokedAsync(Ct))[second.Node]);
        AsyncResult revoked = await second.App.SendTaskAsync("rc.add", [1, 2], options: new ApplyOptions { TaskId = id }, ct: Ct);
        Assert.True(await Poll.UntilAsync(async () => await revoked.GetStateAsync(Ct) == TaskStates.Revoked, s_wait));
    }
}

public sealed class MemoryRemoteControlTests : RemoteControlTests
{
    protected override bool Mingles => false;

    protected override CeleriacOptions Options(string scope) => new() { BrokerUrl = "memory://" + scope, DefaultQueue = "q" + scope };
}

public sealed class SqliteRemoteControlTests : RemoteControlTests, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-control-").FullName;

    protected override bool Mingles => false;

    protected override CeleriacOptions Options(string scope) => new() { BrokerUrl = "sqlite:///" + Path.Join(_directory, scope + ".db"), DefaultQueue = "q" + scope };

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}

public sealed class RedisRemoteControlTests(RedisServerFixture redis) : RemoteControlTests, IClassFixture<RedisServerFixture>
{
    protected override CeleriacOptions Options(string scope) => new() { BrokerUrl = redis.Server.Url(9), ResultBackend = redis.Server.Url(10), DefaultQueue = "q" + scope };
}

public sealed class RabbitMqRemoteControlTests(RabbitMqServerFixture rabbit, RedisServerFixture redis) : RemoteControlTests, IAsyncLifetime, IClassFixture<RedisServerFixture>
{
    private string _url = null!;

    public async ValueTask InitializeAsync() => _url = (await rabbit.ServerAsync()).Url(await rabbit.NewVhostAsync());

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    protected override CeleriacOptions Options(string scope) => new() { BrokerUrl = _url, ResultBackend = redis.Server.Url(11), DefaultQueue = "q" + scope };
}
