using Celeriac.Results;
using Celeriac.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Results;

/// <summary>What a client sees through AsyncResult.</summary>
public sealed class AsyncResultTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static MemoryResultBackend Backend(TimeProvider? time = null, TimeSpan? expires = null) => new(new ResultBackendOptions
    {
        Url = new Uri("memory://" + Guid.NewGuid().ToString("N")),
        TimeProvider = time ?? TimeProvider.System,
        ResultExpires = expires ?? TimeSpan.FromDays(1),
    });

    private static TaskResultMeta Meta(string id, string status, string resultJson, string? traceback = null) => new()
    {
        TaskId = id,
        Status = status,
        Result = JsonAssert.Utf8(resultJson),
        Traceback = traceback,
        DateDone = TaskStates.IsReady(status) ? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero) : null,
    };

    [Fact]
    public async Task GetAsync_NothingStored_TimeoutException()
    {
        await using MemoryResultBackend backend = Backend();
        var result = new AsyncResult("nothing", backend);

        await Assert.ThrowsAsync<TimeoutException>(() => result.GetAsync<int>(TimeSpan.FromMilliseconds(100), Ct));
        Assert.Equal(TaskStates.Pending, result.State);
        Assert.False(result.Ready);
    }

    [Fact]
    public async Task GetAsync_Failure_TaskFailedExceptionWithRemoteTypeMessageAndTraceback()
    {
        await using MemoryResultBackend backend = Backend();
        await backend.StoreAsync(Meta("f", TaskStates.Failure, """{"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}""", "Traceback ..."), Ct);
        var result = new AsyncResult("f", backend);

        var error = await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<int>(TimeSpan.FromSeconds(5), Ct));

        Assert.Equal("ValueError", error.ExceptionType);
        Assert.Equal("builtins", error.ExceptionModule);
        Assert.Equal("boom", error.RemoteMessage);
        Assert.Equal("Traceback ...", error.RemoteTraceback);
        Assert.Equal(TaskStates.Failure, error.State);
        Assert.True(result.Failed);
        Assert.True(result.Ready);
        Assert.False(result.Successful);
    }

    [Fact]
    public async Task States_StartedThenSuccess_ReadyAndSuccessfulFollow()
    {
        await using MemoryResultBackend backend = Backend();
        var result = new AsyncResult("s", backend);
        await backend.StoreAsync(Meta("s", TaskStates.Started, """{"pid": 1, "hostname": "h"}"""), Ct);

        Assert.Equal(TaskStates.Started, await result.GetStateAsync(Ct));
        Assert.False(result.Ready);

        await backend.StoreAsync(Meta("s", TaskStates.Success, "42"), Ct);

        Assert.Equal(42, await result.GetAsync<int>(TimeSpan.FromSeconds(5), Ct));
        Assert.True(result.Ready);
        Assert.True(result.Successful);
        Assert.False(result.Failed);
    }

    [Fact]
    public async Task ForgetAsync_StoredResult_BackToPending()
    {
        await using MemoryResultBackend backend = Backend();
        await backend.StoreAsync(Meta("x", TaskStates.Success, "1"), Ct);
        var result = new AsyncResult("x", backend);
        Assert.Equal(TaskStates.Success, await result.GetStateAsync(Ct));

        await result.ForgetAsync(Ct);

        Assert.Equal(TaskStates.Pending, result.State);
        Assert.Equal(TaskStates.Pending, await result.GetStateAsync(Ct));
    }

    [Fact]
    public async Task MemoryBackend_ResultOlderThanExpiry_ReadsAsPending()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using MemoryResultBackend backend = Backend(time, TimeSpan.FromHours(1));
        await backend.StoreAsync(Meta("e", TaskStates.Success, "1"), Ct);
        var result = new AsyncResult("e", backend);

        time.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal(TaskStates.Success, await result.GetStateAsync(Ct));
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(TaskStates.Pending, await result.GetStateAsync(Ct));
    }

    [Fact]
    public async Task GetAsync_Revoked_TaskFailedExceptionWithRevokedState()
    {
        await using MemoryResultBackend backend = Backend();
        await backend.StoreAsync(Meta("r", TaskStates.Revoked, """{"exc_type": "TaskRevokedError", "exc_message": ["revoked"], "exc_module": "celery.exceptions"}"""), Ct);

        var error = await Assert.ThrowsAsync<TaskFailedException>(() => new AsyncResult("r", backend).GetAsync<int>(TimeSpan.FromSeconds(5), Ct));

        Assert.Equal(TaskStates.Revoked, error.State);
        Assert.Equal("TaskRevokedError", error.ExceptionType);
    }
}
