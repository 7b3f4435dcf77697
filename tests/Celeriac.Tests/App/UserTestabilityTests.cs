using System.Text;
using System.Text.Json;
using Celeriac.Control;
using Celeriac.Results;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac.Tests.App;

/// <summary>
/// What a user's own unit test can build and fake with the public API alone (issue 18, part 1): results, the result
/// document, exceptions, a task's context, a task handle, a fake control client; and <see cref="TaskState"/> to switch on.
/// Every member used here is public.
/// </summary>
public sealed class UserTestabilityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ResultTypes_ConstructedByAUser_ReadAStoredResult()
    {
        var backend = new MemoryResultBackend(new ResultBackendOptions { Url = new Uri("memory://user-test") });
        await backend.StoreAsync(new TaskResultMeta { TaskId = "t1", Status = TaskStates.Success, Result = Encoding.UTF8.GetBytes("42") }, Ct);
        await backend.StoreAsync(new TaskResultMeta { TaskId = "t2", Status = TaskStates.Success, Result = Encoding.UTF8.GetBytes("43") }, Ct);

        var one = new AsyncResult("t1", backend);
        var typed = new AsyncResult<int>("t2", backend);
        var group = new GroupResult("g1", [one, typed], backend);

        Assert.Equal(42, await one.GetAsync<int>(TimeSpan.FromSeconds(5), Ct));
        Assert.Equal(43, await typed.GetAsync(TimeSpan.FromSeconds(5), Ct));
        Assert.Equal([42, 43], await group.Set.GetAsync<int>(TimeSpan.FromSeconds(5), Ct));
        Assert.Equal(TaskState.Success, one.TaskState);
    }

    [Fact]
    public void ExceptionTypes_ConstructedByAUser_CarryWhatTheyWereGiven()
    {
        var info = new ExceptionInfo("ValueError", "bad value", "builtins");
        var failed = new TaskFailedException("t1", TaskStates.Failure, info, "Traceback ...");
        var meta = new TaskResultMeta { TaskId = "t1", Status = TaskStates.Failure, Result = TaskResultMeta.SerializeException(info) };

        Assert.Equal("ValueError", failed.ExceptionType);
        Assert.Equal("t1", failed.TaskId);
        Assert.Equal(info, meta.Exception);
        Assert.Equal(TaskState.Failure, meta.TaskState);
    }

    [Fact]
    public async Task TaskContextForTest_CalledDirectly_TaskReadsIdNameArgumentsAndRetries()
    {
        using var cts = new CancellationTokenSource();
        TaskContext context = TaskContext.ForTest(id: "id-1", name: "tasks.add", args: [2, 3], kwargs: new Dictionary<string, object?> { ["z"] = 4 }, retries: 2, cancellation: cts.Token);

        Assert.Equal("id-1", context.Id);
        Assert.Equal("tasks.add", context.Name);
        Assert.Equal(2, context.Retries);
        Assert.Equal("[2,3]", context.Args.GetRawText());
        Assert.Equal(4, context.Kwargs.GetProperty("z").GetInt32());
        Assert.Equal("celery", context.Queue);
        Assert.Equal(cts.Token, context.CancellationToken);
        Assert.Null(context.App);

        // Not run by a worker: a retry throws the reason, as Celery's called_directly.
        var reason = new InvalidOperationException("flaky");
        Assert.Same(reason, await Assert.ThrowsAsync<InvalidOperationException>(async () => await context.RetryAsync(reason, ct: Ct)));
    }

    [Fact]
    public async Task TaskContextForTest_WithAnAppsTask_RetrySendsTheSameIdAgain()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = $"memory://{Guid.NewGuid():N}" });
        CeleriacTask task = new(app, "tasks.flaky", new TaskOptions { MaxRetries = 3 });
        TaskContext context = TaskContext.ForTest(id: "id-9", task: task, cancellation: Ct);

        RetryException retry = await context.RetryAsync(new InvalidOperationException("flaky"), countdown: TimeSpan.FromSeconds(1), ct: Ct);

        Assert.NotNull(retry);
        Assert.Same(app, context.App);
        Assert.Equal("tasks.flaky", context.Name);
        Assert.Equal(1L, await app.Transport.GetQueueLengthAsync("celery", Ct));
    }

    [Theory]
    [InlineData("PENDING", TaskState.Pending)]
    [InlineData("RECEIVED", TaskState.Received)]
    [InlineData("STARTED", TaskState.Started)]
    [InlineData("SUCCESS", TaskState.Success)]
    [InlineData("FAILURE", TaskState.Failure)]
    [InlineData("RETRY", TaskState.Retry)]
    [InlineData("REVOKED", TaskState.Revoked)]
    [InlineData("REJECTED", TaskState.Rejected)]
    [InlineData("IGNORED", TaskState.Ignored)]
    public void TaskState_CelerysNames_RoundTripUnchanged(string wire, TaskState state)
    {
        Assert.Equal(state, TaskStates.Parse(wire));
        Assert.Equal(wire, state.ToWireName());
        Assert.Equal(TaskStates.IsReady(wire), state.IsReady());
    }

    [Fact]
    public void TaskState_OwnState_IsCustomAndKeepsItsName()
    {
        var meta = new TaskResultMeta { TaskId = "t", Status = "PROGRESS" };

        Assert.Equal(TaskState.Custom, meta.TaskState);
        Assert.Equal("PROGRESS", meta.Status);
        Assert.Equal(TaskState.Custom, TaskStates.Parse("success")); // wire names are exact, as Celery's
        Assert.Throws<ArgumentOutOfRangeException>(() => TaskState.Custom.ToWireName());
    }

    [Fact]
    public async Task FakeControl_PlainClass_InspectorAndNamedCommandsGoThroughIt()
    {
        var fake = new FakeControl();
        ICeleriacControl control = fake;

        ReplyDictionary<string> pings = await control.Inspect().PingAsync(Ct);
        await control.RevokeAsync(["t1"], terminate: true, ct: Ct);
        await control.RateLimitAsync("tasks.add", "10/m", ct: Ct);

        Assert.Equal("pong", pings["celery@fake"]);
        Assert.Equal(["ping", "revoke", "rate_limit"], fake.Sent);
    }

    [Fact]
    public async Task AddCeleriac_RegistersControlAndClient_OnceEach()
    {
        var services = new ServiceCollection();
        services.AddCeleriac(o => o.BrokerUrl = $"memory://{Guid.NewGuid():N}");
        services.AddCeleriac();
        await using ServiceProvider provider = services.BuildServiceProvider();

        CeleriacApp app = provider.GetRequiredService<CeleriacApp>();

        Assert.Same(app, provider.GetRequiredService<ICeleriacClient>());
        Assert.Same(app.Control, provider.GetRequiredService<ICeleriacControl>());
        Assert.Single(services, d => d.ServiceType == typeof(ICeleriacControl));
    }

    private sealed class FakeControl : ICeleriacControl
    {
        public List<string> Sent { get; } = [];

        public Task<IReadOnlyList<ControlReply>> BroadcastAsync(string command, IReadOnlyDictionary<string, object?>? arguments = null, ControlOptions? options = null, CancellationToken ct = default)
        {
            Sent.Add(command);
            using JsonDocument pong = JsonDocument.Parse("""{"ok": "pong"}""");
            IReadOnlyList<ControlReply> replies = command == "ping" ? [new ControlReply("celery@fake", pong.RootElement.Clone())] : [];
            return Task.FromResult(replies);
        }
    }
}
