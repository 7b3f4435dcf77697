using System.Collections.Concurrent;
using System.Text.Json;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;
using Microsoft.Data.Sqlite;

namespace Celeriac.Tests.Canvas;

/// <summary>
/// Every canvas shape as users send it, run by a real worker on a real store: chains, groups, chords (big ones, failing
/// ones, nested ones), callbacks of both error styles, chunks, maps and replacement. Each test has its own store scope.
/// </summary>
public abstract class CanvasTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Options of an app on the store named <paramref name="scope"/>: apps made with the same scope share it.</summary>
    protected abstract CeleriacOptions Options(string scope);

    /// <summary>A worker app with the test tasks, and what they record.</summary>
    private sealed class Rig : IAsyncDisposable
    {
        public required CeleriacApp App { get; init; }

        public required RunningWorker Worker { get; init; }

        public required ConcurrentQueue<string> Calls { get; init; }

        public required ConcurrentQueue<string> Errbacks { get; init; }

        public required ConcurrentQueue<long[]> Collected { get; init; }

        public CeleriacTask Add => App.Signature("c.add");

        public CeleriacTask Sum => App.Signature("c.tsum");

        public async ValueTask DisposeAsync()
        {
            await Worker.DisposeAsync();
            await App.DisposeAsync();
        }
    }

    private async Task<Rig> StartAsync(int concurrency = 8)
    {
        string scope = Guid.NewGuid().ToString("N")[..12];
        CeleriacOptions options = Options(scope);
        options.Concurrency = concurrency;
        options.NodeName = "canvas-" + scope + "@test";
        var app = new CeleriacApp(options);
        var calls = new ConcurrentQueue<string>();
        var errbacks = new ConcurrentQueue<string>();
        var collected = new ConcurrentQueue<long[]>();
        app.Task("c.collect", (long[] nums) =>
        {
            collected.Enqueue(nums);
            return nums.Length;
        });
        app.Task("c.add", (long x, long y) => x + y);
        app.Task("c.tsum", (long[] nums) =>
        {
            calls.Enqueue("tsum:" + nums.Length);
            return nums.Sum();
        });
        app.Task("c.fail", long (params JsonElement[] args) => throw new InvalidOperationException("deliberate"));
        app.Task("c.old_errback", (string taskId) => errbacks.Enqueue("old:" + taskId));
        app.Task("c.new_errback", (JsonElement request, JsonElement exc, string? traceback) =>
            errbacks.Enqueue($"new:{request.GetProperty("id").GetString()}:{exc.GetProperty("exc_type").GetString()}"));
        app.Task("c.replaced", async (long x, TaskContext context) =>
        {
            CeleriacTask add = context.App!.Signature("c.add");
            throw await context.ReplaceAsync(add.S(x, 1) | add.S(100));
        });
        app.Task("c.identity", (JsonElement x) => x);
        app.Task("c.replace_with_linked_chain", async (long x, TaskContext context) =>
        {
            CeleriacTask add = context.App!.Signature("c.add");
            Signature chain = add.S(x, 1) | add.S(1);
            chain.Link(context.App!.Signature("c.old_errback").Si("linked"));
            throw await context.ReplaceAsync(chain);
        });
        app.Task("c.replace_with_empty_chain", async (TaskContext context) =>
        {
            throw await context.ReplaceAsync(new Chain([]));
        });
        app.Task("c.spawn", async (TaskContext context) =>
        {
            CeleriacTask add = context.App!.Signature("c.add");
            AsyncResult a = await add.S(1, 2).ApplyAsync();
            AsyncResult b = await add.S(3, 4).ApplyAsync();
            return new[] { a.Id, b.Id };
        });
        return new Rig { App = app, Worker = await RunningWorker.StartAsync(app), Calls = calls, Errbacks = errbacks, Collected = collected };
    }

    [Fact]
    public async Task Chain_OfTen_EachResultIsTheNextFirstArgument_AndParentsWalkBack()
    {
        await using Rig rig = await StartAsync();
        Signature chain = rig.Add.S(1, 1);
        for (int i = 0; i < 9; i++)
        {
            chain |= rig.Add.S(10);
        }

        AsyncResult last = await chain.ApplyAsync(ct: Ct);

        Assert.Equal(92, await last.GetAsync<long>(s_wait, Ct));
        var ids = new List<string>();
        for (AsyncResult? node = last; node is not null; node = node.Parent)
        {
            ids.Add(node.Id);
            TaskResultMeta meta = await node.WaitAsync(s_wait, Ct);
            Assert.Equal(TaskStates.Success, meta.Status);
        }

        Assert.Equal(10, ids.Distinct().Count());
        TaskResultMeta firstMeta = await rig.App.AsyncResult(ids[^1]).WaitAsync(s_wait, Ct);
        Assert.Equal(2, firstMeta.ResultElement.GetInt64());
        // The first step names the second as its child, as Celery records it.
        AsyncResult first = rig.App.AsyncResult(ids[^1]);
        await first.RefreshAsync(Ct);
        Assert.Equal(ids[^2], Assert.Single(first.Children).Id);
    }

    [Fact]
    public async Task Chain_StepFails_StopsAndFailsTheRestAndCallsTheErrorCallback()
    {
        await using Rig rig = await StartAsync();
        Signature chain = (rig.Add.S(1, 1) | rig.App.Signature("c.fail").S() | rig.Add.S(5)).OnError(rig.App.Signature("c.old_errback").S());

        AsyncResult last = await chain.ApplyAsync(ct: Ct);

        TaskResultMeta meta = await last.WaitAsync(s_wait, Ct);
        Assert.Equal(TaskStates.Failure, meta.Status);
        Assert.Equal("InvalidOperationException", meta.Exception!.Type);
        string failedId = last.Parent!.Id;
        Assert.True(await Poll.UntilAsync(() => rig.Errbacks.Contains("old:" + failedId), s_wait), string.Join(",", rig.Errbacks));
    }

    [Fact]
    public async Task Group_OfThousand_ResultsInOrder()
    {
        await using Rig rig = await StartAsync();
        Group group = global::Celeriac.Canvas.Group(Enumerable.Range(0, 1000).Select(i => rig.Add.S(i, i)));

        GroupResult result = await group.ApplyAsync(ct: Ct);

        IReadOnlyList<long> values = await result.JoinAsync<long>(s_wait, Ct);
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => 2L * i), values);
        await result.RefreshAllAsync(Ct);
        Assert.Equal(1000, result.CompletedCount);
        Assert.True(result.Ready);
        Assert.True(result.Successful);
        Assert.False(result.Failed);
    }

    [Fact]
    public async Task Group_SavedAndRestored_ByAnotherClient()
    {
        await using Rig rig = await StartAsync();
        GroupResult result = await global::Celeriac.Canvas.Group(rig.Add.S(1, 1), rig.Add.S(2, 2)).ApplyAsync(ct: Ct);
        await result.SaveAsync(Ct);

        GroupResult? restored = await GroupResult.RestoreAsync(rig.App, result.Id, Ct);

        Assert.NotNull(restored);
        Assert.Equal(result.Results.Select(r => r.Id), restored.Results.Select(r => r.Id));
        Assert.Equal([2L, 4L], await restored.JoinAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task Chord_OfThousand_BodyRunsOnceWithEveryResultInOrder()
    {
        await using Rig rig = await StartAsync();
        Chord chord = global::Celeriac.Canvas.Chord(Enumerable.Range(0, 1000).Select(i => rig.Add.S(i, 0)), rig.App.Signature("c.collect").S());

        AsyncResult body = await chord.ApplyAsync(ct: Ct);

        Assert.Equal(1000, await body.GetAsync<int>(s_wait, Ct));
        long[] once = Assert.Single(rig.Collected);
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (long)i), once);
    }

    [Fact]
    public async Task Chord_MemberFails_BodyFailsWithChordErrorAndItsErrbacksRun()
    {
        await using Rig rig = await StartAsync();
        Signature body = rig.Sum.S();
        body.LinkError(rig.App.Signature("c.old_errback").S());
        body.LinkError(rig.App.Signature("c.new_errback").S());
        Chord chord = global::Celeriac.Canvas.Chord([rig.Add.S(1, 1), rig.App.Signature("c.fail").S(), rig.Add.S(2, 2)], body);

        AsyncResult result = await chord.ApplyAsync(ct: Ct);

        TaskResultMeta meta = await result.WaitAsync(s_wait, Ct);
        Assert.Equal(TaskStates.Failure, meta.Status);
        Assert.Equal("ChordError", meta.Exception!.Type);
        Assert.Equal("celery.exceptions", meta.Exception.Module);
        Assert.StartsWith("Dependency ", meta.Exception.Message, StringComparison.Ordinal);
        Assert.EndsWith(" raised InvalidOperationException('deliberate')", meta.Exception.Message, StringComparison.Ordinal);
        Assert.True(await Poll.UntilAsync(() => rig.Errbacks.Count >= 2, s_wait), string.Join(",", rig.Errbacks));
        Assert.Contains("old:" + result.Id, rig.Errbacks);
        Assert.Contains($"new:{result.Id}:ChordError", rig.Errbacks);
        Assert.DoesNotContain(rig.Calls, c => c.StartsWith("tsum", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Chain_EndingInAChord_GroupAfterAStepGetsItsResult()
    {
        await using Rig rig = await StartAsync();
        Signature chain = rig.Add.S(1, 1) | global::Celeriac.Canvas.Group(rig.Add.S(10), rig.Add.S(20)) | rig.Sum.S();

        AsyncResult result = await chain.ApplyAsync(ct: Ct);

        Assert.Equal(34, await result.GetAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task ChordOfChords_BodyGetsTheInnerBodiesResults()
    {
        await using Rig rig = await StartAsync();
        Chord inner1 = global::Celeriac.Canvas.Chord([rig.Add.S(1, 1), rig.Add.S(2, 2)], rig.Sum.S());
        Chord inner2 = global::Celeriac.Canvas.Chord([rig.Add.S(3, 3)], rig.Sum.S());
        Chord outer = global::Celeriac.Canvas.Chord([inner1, inner2], rig.App.Signature("c.tsum").S());

        AsyncResult result = await outer.ApplyAsync(ct: Ct);

        Assert.Equal(12, await result.GetAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task NestedShapes_ChainInChain_ChainsInAGroupAndInAChordHeader()
    {
        await using Rig rig = await StartAsync();

        AsyncResult chainInChain = await global::Celeriac.Canvas.Chain(global::Celeriac.Canvas.Chain(rig.Add.S(1, 1), rig.Add.S(1)), rig.Add.S(1)).ApplyAsync(ct: Ct);
        GroupResult chainsInGroup = await global::Celeriac.Canvas.Group(rig.Add.S(1, 1) | rig.Add.S(1), rig.Add.S(2, 2)).ApplyAsync(ct: Ct);
        AsyncResult chainsInHeader = await global::Celeriac.Canvas.Chord([rig.Add.S(1, 1) | rig.Add.S(10), rig.Add.S(2, 2) | rig.Add.S(20)], rig.Sum.S()).ApplyAsync(ct: Ct);

        Assert.Equal(4, await chainInChain.GetAsync<long>(s_wait, Ct));
        Assert.Equal([3L, 4L], await chainsInGroup.JoinAsync<long>(s_wait, Ct));
        Assert.Equal(36, await chainsInHeader.GetAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task Chord_EmptyHeader_BodyGetsAnEmptyList()
    {
        await using Rig rig = await StartAsync();

        AsyncResult result = await global::Celeriac.Canvas.Chord([], rig.Sum.S()).ApplyAsync(ct: Ct);

        Assert.Equal(0, await result.GetAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task ChordUnlock_AsACeleryClientSendsItForABackendWithoutAJoin_RetriesUntilReadyThenSendsTheBody()
    {
        await using Rig rig = await StartAsync();
        // A Celery client on a backend without a native join sends the header as a plain group, then celery.chord_unlock
        // with the members' result tuples; the unlock polls (retrying every interval) and sends the body once all are ready.
        GroupResult header = await global::Celeriac.Canvas.Group(rig.Add.S(1, 1).SetCountdown(TimeSpan.FromSeconds(1)), rig.Add.S(2, 2)).ApplyAsync(ct: Ct);
        Signature body = rig.App.Signature("c.collect").S();
        body.Id = Guid.NewGuid().ToString();
        var tuples = header.Results.Select(r => (object?)new object?[] { new object?[] { r.Id, null }, null }).ToList();

        await rig.App.SendTaskAsync("celery.chord_unlock", [header.Id, body], new Dictionary<string, object?> { ["result"] = tuples, ["interval"] = 0.2 }, ct: Ct);

        Assert.Equal(2, await rig.App.AsyncResult(body.Id).GetAsync<int>(s_wait, Ct));
        Assert.Equal([2L, 4L], Assert.Single(rig.Collected));
    }

    [Fact]
    public async Task LinkError_BothStyles_OldGetsTheIdNewGetsRequestAndException()
    {
        await using Rig rig = await StartAsync();
        Signature failing = rig.App.Signature("c.fail").S();
        failing.LinkError(rig.App.Signature("c.old_errback").S());
        failing.LinkError(rig.App.Signature("c.new_errback").S());

        AsyncResult result = await failing.ApplyAsync(ct: Ct);

        Assert.Equal(TaskStates.Failure, (await result.WaitAsync(s_wait, Ct)).Status);
        Assert.True(await Poll.UntilAsync(() => rig.Errbacks.Count >= 2, s_wait), string.Join(",", rig.Errbacks));
        Assert.Contains("old:" + result.Id, rig.Errbacks);
        Assert.Contains($"new:{result.Id}:InvalidOperationException", rig.Errbacks);
    }

    [Fact]
    public async Task Link_SuccessCallbacks_GetTheResult()
    {
        await using Rig rig = await StartAsync();
        Signature sig = rig.Add.S(2, 3);
        sig.Link(rig.Add.S(100));

        AsyncResult result = await sig.ApplyAsync(ct: Ct);

        Assert.Equal(5, await result.GetAsync<long>(s_wait, Ct));
        await result.RefreshAsync(Ct);
        AsyncResult callback = Assert.Single(result.Children);
        Assert.Equal(105, await callback.GetAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task Replace_TaskReplacedByAChain_TheChainsResultIsTheTasksAndCallbacksFollow()
    {
        await using Rig rig = await StartAsync();
        Signature sig = rig.App.Signature("c.replaced").S(5);
        sig.Link(rig.Add.S(1000));

        AsyncResult result = await sig.ApplyAsync(ct: Ct);

        Assert.Equal(106, await result.GetAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task Replace_ByAChainWithALink_TheLinkRunsAfterItsLastStep_AndAnEmptyChainIsImproperlyConfigured()
    {
        await using Rig rig = await StartAsync();

        AsyncResult result = await (rig.App.Signature("c.replace_with_linked_chain").S(5) | rig.Add.S(100)).ApplyAsync(ct: Ct);
        AsyncResult empty = await rig.App.Signature("c.replace_with_empty_chain").S().ApplyAsync(ct: Ct);

        Assert.Equal(107, await result.GetAsync<long>(s_wait, Ct));
        Assert.True(await Poll.UntilAsync(() => rig.Errbacks.Contains("old:linked"), s_wait), string.Join(",", rig.Errbacks));
        TaskResultMeta meta = await empty.WaitAsync(s_wait, Ct);
        Assert.Equal(("ImproperlyConfigured", "celery.exceptions", "Cannot replace with an empty chain"), (meta.Exception!.Type, meta.Exception.Module, meta.Exception.Message));
    }

    [Fact]
    public async Task Chord_HeaderMemberIsAChainEndingInAGroup_BodyGetsTheResultsNestedAsCelerys()
    {
        await using Rig rig = await StartAsync();
        CeleriacTask identity = rig.App.Signature("c.identity");
        Chord chord = global::Celeriac.Canvas.Chord([identity.S(42) | global::Celeriac.Canvas.Group(identity.S(), identity.S())], identity.S());

        AsyncResult result = await chord.ApplyAsync(ct: Ct);

        JsonAssert.Equal(JsonAssert.Parse("[[42, 42]]"), await result.GetAsync(s_wait, Ct));
    }

    [Fact]
    public async Task Chord_MemberFails_TheFailedBodyNamesItsErrbacksAsChildren()
    {
        await using Rig rig = await StartAsync();
        Chord chord = global::Celeriac.Canvas.Chord([rig.Add.S(1, 2), rig.App.Signature("c.fail").S()], rig.Sum.S().OnError(rig.App.Signature("c.old_errback").S()));

        AsyncResult body = await chord.ApplyAsync(ct: Ct);

        Assert.Equal(TaskStates.Failure, (await body.WaitAsync(s_wait, Ct)).Status);
        GroupResult errbacks = Assert.IsType<GroupResult>(Assert.Single(body.Children));
        AsyncResult errback = Assert.Single(errbacks.Results);
        Assert.Equal(TaskStates.Success, (await errback.WaitAsync(s_wait, Ct)).Status);
        Assert.Contains("old:" + body.Id, rig.Errbacks);
    }

    [Fact]
    public async Task ChunksMapStarmap_RunTheTaskForEachItem()
    {
        await using Rig rig = await StartAsync();

        GroupResult chunks = (GroupResult)await global::Celeriac.Canvas.Chunks(rig.Add.S(), Enumerable.Range(0, 10).Select(i => (object?)new[] { i, i }), 3).ApplyAsync(ct: Ct);
        AsyncResult map = await global::Celeriac.Canvas.Map(rig.Sum.S(), [new[] { 1, 2 }, new[] { 3, 4 }]).ApplyAsync(ct: Ct);
        AsyncResult starmap = await global::Celeriac.Canvas.Starmap(rig.Add.S(), [new[] { 1, 2 }, new[] { 3, 4 }]).ApplyAsync(ct: Ct);

        IReadOnlyList<long[]?> parts = await chunks.JoinAsync<long[]>(s_wait, Ct);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => 2L * i), parts.SelectMany(p => p!));
        Assert.Equal(4, parts.Count);
        long[]? mapped = await map.GetAsync<long[]>(s_wait, Ct);
        long[]? starmapped = await starmap.GetAsync<long[]>(s_wait, Ct);
        Assert.Equal<long>([3L, 7L], mapped!);
        Assert.Equal<long>([3L, 7L], starmapped!);
    }

    [Fact]
    public async Task Children_TaskThatSendsSubtasks_RecordsThemAndCollectWalksThem()
    {
        await using Rig rig = await StartAsync();

        AsyncResult result = await rig.App.Signature("c.spawn").S().ApplyAsync(ct: Ct);

        string[] sent = (await result.GetAsync<string[]>(s_wait, Ct))!;
        Assert.Equal(sent, result.Children.Select(c => c.Id));
        IReadOnlyList<(AsyncResult Result, TaskResultMeta Meta)> tree = await result.CollectAsync(s_wait, ct: Ct);
        Assert.Equal([result.Id, .. sent], tree.Select(n => n.Result.Id));
        Assert.Equal([3L, 7L], tree.Skip(1).Select(n => n.Meta.ResultElement.GetInt64()));
    }
}

public sealed class SqliteCanvasTests : CanvasTests, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-canvas-").FullName;

    protected override CeleriacOptions Options(string scope) => new() { BrokerUrl = "sqlite:///" + Path.Join(_directory, scope + ".db"), DefaultQueue = "q" + scope };

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}

public sealed class RedisCanvasTests(RedisServerFixture redis) : CanvasTests, IClassFixture<RedisServerFixture>
{
    protected override CeleriacOptions Options(string scope) => new() { BrokerUrl = redis.Server.Url(0), ResultBackend = redis.Server.Url(1), DefaultQueue = "q" + scope };
}

/// <summary>On a vhost of the test's own, with results on Redis: <c>rpc://</c> has no chords, in Celery as here.</summary>
public sealed class RabbitMqCanvasTests(RabbitMqServerFixture rabbit, RedisServerFixture redis) : CanvasTests, IAsyncLifetime, IClassFixture<RedisServerFixture>
{
    private string _url = null!;

    public async ValueTask InitializeAsync() => _url = (await rabbit.ServerAsync()).Url(await rabbit.NewVhostAsync());

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    protected override CeleriacOptions Options(string scope) => new() { BrokerUrl = _url, ResultBackend = redis.Server.Url(2), DefaultQueue = "q" + scope };
}
