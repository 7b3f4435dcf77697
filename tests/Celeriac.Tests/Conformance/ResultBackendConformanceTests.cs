using System.Text;
using System.Text.Json;
using Celeriac.Results;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Conformance;

/// <summary>How a test wants its result backend.</summary>
/// <param name="Peer">A backend on the same store as another process would have it (no in-process wake-ups).</param>
/// <param name="Time">The clock; <see langword="null"/> for the system clock.</param>
/// <param name="Expires">How long results live.</param>
public sealed record BackendSetup(bool Peer = false, TimeProvider? Time = null, TimeSpan? Expires = null);

/// <summary>
/// What every <see cref="IResultBackend"/> must do, tested the same way on each. A subclass makes
/// backends on a fresh store per test.
/// </summary>
public abstract class ResultBackendConformanceTests : IAsyncDisposable
{
    private readonly List<IResultBackend> _backends = [];

    /// <summary>Creates a backend on this test's store.</summary>
    protected abstract ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup);

    /// <summary>The raw bytes stored under a key, to check Celery's documents byte for byte; skip where unreadable.</summary>
    protected virtual ValueTask<byte[]?> ReadRawAsync(string key)
    {
        Assert.Skip("This store's raw values cannot be read from a test.");
        return ValueTask.FromResult<byte[]?>(null);
    }

    /// <summary>Why the chord counter is not atomic across processes, or <see langword="null"/> when it is.</summary>
    protected virtual string? NoCrossProcessCounterReason => null;

    /// <summary>Why results never expire on this store (as Celery's backend for it), or <see langword="null"/> when they do.</summary>
    protected virtual string? NoExpiryReason => null;

    /// <summary>Why the store joins no chords itself (Celery's <c>celery.chord_unlock</c> does), or <see langword="null"/> when it does.</summary>
    protected virtual string? NoChordJoinReason => null;

    /// <summary>Why this store cannot join chords (no atomic counter), or <see langword="null"/> when it can.</summary>
    protected virtual string? NoChordsReason => null;

    /// <summary>
    /// Whether the result's JSON text is kept byte for byte; a store that keeps the value in another form (the database
    /// backend's pickles) returns the same value, compared as JSON.
    /// </summary>
    protected virtual bool KeepsResultText => true;

    /// <summary>Whether results expire by the server's own clock (Redis), so the test waits in real time.</summary>
    protected virtual bool ExpiresOnServerClock => false;

    /// <summary>
    /// How long a waiter may take to see a stored result: a store that cannot push is polled, and an emulator in Node.js
    /// on a busy two-core machine answers a poll in seconds at worst (seen: over 4 s for s3rver during a full run).
    /// </summary>
    protected virtual TimeSpan WaitPatience => TimeSpan.FromSeconds(5);

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<IResultBackend> NewAsync(BackendSetup? setup = null)
    {
        IResultBackend b = await CreateBackendAsync(setup ?? new BackendSetup());
        lock (_backends)
        {
            _backends.Add(b);
        }

        return b;
    }

    private static string NewId() => Guid.NewGuid().ToString();

    private static TaskResultMeta Success(string id, string json = "{\"sum\": [1, 2.5, \"x\"]}") => new()
    {
        TaskId = id,
        Status = TaskStates.Success,
        Result = Encoding.UTF8.GetBytes(json),
        DateDone = new DateTimeOffset(2024, 5, 6, 7, 8, 9, 123, TimeSpan.Zero),
        GroupId = "g-" + id,
        ParentId = "p-" + id,
    };

    [Fact]
    public async Task StoreAsync_ThenGet_RoundTripsCeleryDocument()
    {
        IResultBackend b = await NewAsync();
        string id = NewId();
        TaskResultMeta meta = Success(id);

        await b.StoreAsync(meta, Ct);
        TaskResultMeta? got = await b.GetAsync(id, Ct);

        Assert.NotNull(got);
        Assert.Equal(TaskStates.Success, got.Status);
        Assert.Equal(id, got.TaskId);
        if (KeepsResultText)
        {
            Assert.Equal(meta.Encode(), got.Encode());
        }
        else
        {
            Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(meta.Encode()), System.Text.Json.Nodes.JsonNode.Parse(got.Encode())), Encoding.UTF8.GetString(got.Encode()));
        }
    }

    [Fact]
    public async Task StoreAsync_UnderCeleryKey_StoresDocumentByteForByte()
    {
        IResultBackend b = await NewAsync();
        string id = NewId();
        TaskResultMeta meta = Success(id);

        await b.StoreAsync(meta, Ct);
        byte[]? raw = await ReadRawAsync(KeyValueResultBackend.TaskKeyPrefix + id);

        Assert.Equal(meta.Encode(), raw);
        using JsonDocument doc = JsonDocument.Parse(raw!);
        Assert.Equal(["status", "result", "traceback", "children", "date_done", "group_id", "parent_id", "task_id"],
            doc.RootElement.EnumerateObject().Select(p => p.Name).Where(n => n is not ("name" or "args" or "kwargs" or "worker" or "retries" or "queue")));
    }

    [Fact]
    public async Task GetAsync_UnknownId_ReturnsNull()
    {
        IResultBackend b = await NewAsync();

        Assert.Null(await b.GetAsync(NewId(), Ct));
    }

    [Fact]
    public async Task WaitAsync_AnotherWriterStoresLater_ReturnsOnlyOnReadyState()
    {
        IResultBackend waiter = await NewAsync();
        IResultBackend writer = await NewAsync(new BackendSetup(Peer: true));
        string id = NewId();
        Task<TaskResultMeta> wait = waiter.WaitAsync(id, Ct).AsTask();
        await Task.Delay(150, Ct);

        await writer.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Started }, Ct);
        await Task.Delay(700, Ct);
        Assert.False(wait.IsCompleted);

        await writer.StoreAsync(Success(id), Ct);
        TaskResultMeta got = await wait.WaitAsync(WaitPatience, Ct);
        Assert.Equal(TaskStates.Success, got.Status);
    }

    [Fact]
    public async Task WaitAsync_SameBackendStores_Returns()
    {
        IResultBackend b = await NewAsync();
        string id = NewId();
        Task<TaskResultMeta> wait = b.WaitAsync(id, Ct).AsTask();
        await Task.Delay(50, Ct);

        await b.StoreAsync(Success(id), Ct);

        Assert.Equal(TaskStates.Success, (await wait.WaitAsync(WaitPatience, Ct)).Status);
    }

    [Fact]
    public async Task WaitAsync_Cancelled_ThrowsOperationCanceled()
    {
        IResultBackend b = await NewAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => b.WaitAsync(NewId(), cts.Token).AsTask().WaitAsync(WaitPatience, Ct));
    }

    [Fact]
    public async Task ForgetAsync_StoredResult_ReadsAsMissing()
    {
        IResultBackend b = await NewAsync();
        string id = NewId();
        await b.StoreAsync(Success(id), Ct);

        await b.ForgetAsync(id, Ct);
        await b.ForgetAsync(id, Ct); // forgetting twice is fine

        Assert.Null(await b.GetAsync(id, Ct));
    }

    [Fact]
    public async Task GetAsync_AfterExpiry_ReadsAsMissing()
    {
        if (NoExpiryReason is { } never)
        {
            Assert.Skip(never);
        }

        if (ExpiresOnServerClock)
        {
            IResultBackend server = await NewAsync(new BackendSetup(Expires: TimeSpan.FromSeconds(1)));
            string shortLived = NewId();
            await server.StoreAsync(Success(shortLived), Ct);
            Assert.NotNull(await server.GetAsync(shortLived, Ct));
            await Task.Delay(TimeSpan.FromMilliseconds(1300), Ct);
            Assert.Null(await server.GetAsync(shortLived, Ct));
            return;
        }

        var time = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        IResultBackend b = await NewAsync(new BackendSetup(Time: time, Expires: TimeSpan.FromMinutes(10)));
        string id = NewId();
        await b.StoreAsync(Success(id), Ct);

        time.Advance(TimeSpan.FromMinutes(9));
        Assert.NotNull(await b.GetAsync(id, Ct));
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Null(await b.GetAsync(id, Ct));
    }

    [Fact]
    public async Task SaveGroupAsync_ThenRestore_ReturnsMembersInOrder()
    {
        IResultBackend b = await NewAsync();
        IResultBackend peer = await NewAsync(new BackendSetup(Peer: true));
        string group = NewId();
        string[] ids = [NewId(), NewId(), NewId()];

        await b.SaveGroupAsync(group, ids, Ct);

        Assert.Equal(ids, await peer.RestoreGroupAsync(group, Ct));
        Assert.Null(await b.RestoreGroupAsync(NewId(), Ct));
    }

    [Fact]
    public async Task SaveGroupAsync_StoresCeleryNestedTuple()
    {
        IResultBackend b = await NewAsync();
        string group = NewId();

        await b.SaveGroupAsync(group, ["a", "b"], Ct);
        byte[]? raw = await ReadRawAsync(KeyValueResultBackend.GroupKeyPrefix + group);

        Assert.Equal($"{{\"result\":[[\"{group}\",null],[[[\"a\",null],null],[[\"b\",null],null]]]}}", Encoding.UTF8.GetString(raw!));
    }

    [Fact]
    public async Task IncrementChordCounterAsync_Concurrent_CountsEveryIncrementOnce()
    {
        SkipWithoutChords();
        IResultBackend b = await NewAsync();
        string group = NewId();

        long[] values = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => Task.Run(() => b.IncrementChordCounterAsync(group, Ct).AsTask(), Ct)));

        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), values.Order());
    }

    [Fact]
    public async Task IncrementChordCounterAsync_TwoWritersOnOneStore_CountsEveryIncrementOnce()
    {
        SkipWithoutChords();
        if (NoCrossProcessCounterReason is { } reason)
        {
            Assert.Skip(reason);
        }

        IResultBackend a = await NewAsync();
        IResultBackend b = await NewAsync(new BackendSetup(Peer: true));
        string group = NewId();

        long[] values = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => Task.Run(() => (i % 2 == 0 ? a : b).IncrementChordCounterAsync(group, Ct).AsTask(), Ct)));

        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), values.Order());
    }

    [Fact]
    public async Task AddChordPartAsync_HundredMembersEndingTogetherOnTwoWriters_ExactlyOneGetsEveryResultInHeaderOrder()
    {
        SkipWithoutChords();
        if (NoChordJoinReason is { } noJoin)
        {
            Assert.Skip(noJoin);
        }

        IResultBackend a = await NewAsync();
        IResultBackend b = NoCrossProcessCounterReason is null ? await NewAsync(new BackendSetup(Peer: true)) : a;
        string group = NewId();
        string[] ids = [.. Enumerable.Range(0, 100).Select(_ => NewId())];
        await a.BeginChordAsync(group, ids, ids.Length, ct: Ct);

        // Members store their results first (as the worker does), then report their parts, all at once.
        ChordJoin?[] joins = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => Task.Run(async () =>
        {
            IResultBackend writer = i % 2 == 0 ? a : b;
            byte[] value = Encoding.UTF8.GetBytes((i * 10).ToString(System.Globalization.CultureInfo.InvariantCulture));
            await writer.StoreAsync(new TaskResultMeta { TaskId = ids[i], Status = TaskStates.Success, Result = value, DateDone = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero) }, Ct);
            return await writer.AddChordPartAsync(new ChordPartReturn(group, i, ids[i], TaskStates.Success, value, null), Ct);
        }, Ct)));

        IReadOnlyList<ChordPart> winner = Assert.Single(joins, j => j is not null)!.Parts;
        Assert.Equal(ids, winner.Select(p => p.TaskId));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => i * 10), winner.Select(p => p.Result.GetInt32()));
        Assert.All(winner, p => Assert.Equal(TaskStates.Success, p.State));
    }

    [Fact]
    public async Task AddChordPartAsync_FailedMember_IsReportedWithItsException()
    {
        SkipWithoutChords();
        if (NoChordJoinReason is { } noJoin)
        {
            Assert.Skip(noJoin);
        }

        IResultBackend b = await NewAsync();
        string group = NewId();
        string[] ids = [NewId(), NewId()];
        await b.BeginChordAsync(group, ids, 2, ct: Ct);
        byte[] exc = Encoding.UTF8.GetBytes("""{"exc_type": "ValueError", "exc_message": ["bad"], "exc_module": "builtins"}""");
        await b.StoreAsync(new TaskResultMeta { TaskId = ids[1], Status = TaskStates.Failure, Result = exc, DateDone = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero) }, Ct);
        Assert.Null(await b.AddChordPartAsync(new ChordPartReturn(group, 1, ids[1], TaskStates.Failure, exc, null), Ct));
        await b.StoreAsync(new TaskResultMeta { TaskId = ids[0], Status = TaskStates.Success, Result = "1"u8.ToArray(), DateDone = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero) }, Ct);

        IReadOnlyList<ChordPart>? all = (await b.AddChordPartAsync(new ChordPartReturn(group, 0, ids[0], TaskStates.Success, "1"u8.ToArray(), null), Ct))?.Parts;

        Assert.NotNull(all);
        Assert.Equal([TaskStates.Success, TaskStates.Failure], all.Select(p => p.State));
        Assert.Equal("ValueError('bad')", ExceptionInfo.Read(all[1].Result).ToPythonRepr());
    }

    private void SkipWithoutChords()
    {
        if (NoChordsReason is { } reason)
        {
            Assert.Skip(reason);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (IResultBackend b in _backends)
        {
            await b.DisposeAsync();
        }

        await DisposeStoreAsync();
        GC.SuppressFinalize(this);
    }

    /// <summary>Deletes the test's store, after every backend is disposed.</summary>
    protected virtual ValueTask DisposeStoreAsync() => ValueTask.CompletedTask;
}
