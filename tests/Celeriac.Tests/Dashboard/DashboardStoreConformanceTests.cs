using Celeriac.Dashboard.Store;

namespace Celeriac.Tests.Dashboard;

/// <summary>
/// What every <see cref="IDashboardStore"/> must do, tested the same way on each: upserts that keep what an update
/// lacks, Flower's search and filters with paging and a total, the events timeline, workers, stats, pruning by count
/// and age, and (where the store persists) everything still there after a reopen. A subclass makes a fresh store per test.
/// </summary>
public abstract class DashboardStoreConformanceTests : IAsyncDisposable
{
    private readonly List<IDashboardStore> _stores = [];

    /// <summary>Opens the store of this test (a second call opens the same data again, as a restarted dashboard would).</summary>
    protected abstract Task<IDashboardStore> OpenStoreAsync();

    /// <summary>Why the store does not survive a reopen, or null when it does.</summary>
    protected virtual string? NotPersistentReason => null;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<IDashboardStore> StoreAsync()
    {
        IDashboardStore store = await OpenStoreAsync();
        _stores.Add(store);
        return store;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (IDashboardStore store in _stores)
        {
            await store.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    private static DashboardTask Task(string uuid, string state = "SUCCESS", double timestamp = 1_000_000, string? name = "tasks.add",
        string? args = "(2, 3)", string? kwargs = "{}", string? result = "5", string? worker = "celery@w1") => new()
    {
        Uuid = uuid, State = state, Timestamp = timestamp, Name = name, Args = args, Kwargs = kwargs, Result = result, Worker = worker,
        Received = timestamp - 1,
    };

    private static DashboardBatch Tasks(params DashboardTask[] tasks) => new(tasks, [], []);

    [Fact]
    public async Task Write_ThenGet_ReturnsEveryField()
    {
        IDashboardStore store = await StoreAsync();
        var task = new DashboardTask
        {
            Uuid = "t1", State = "FAILURE", Name = "tasks.fail", Sent = 1, Received = 2, Started = 3, Failed = 4, Retried = 3.5,
            Timestamp = 4, Runtime = 1.5, Args = "('x',)", Kwargs = "{'k': 'v'}", Exception = "ValueError('x')", Traceback = "Traceback...",
            Worker = "celery@w1", Retries = 1, Eta = "2026-01-01T00:00:00+00:00", Expires = "2026-01-02T00:00:00+00:00",
            RoutingKey = "celery", Exchange = "", RootId = "r", ParentId = "p", Client = "c@h", Clock = 42, RetryOf = "t0",
        };
        await store.WriteAsync(Tasks(task), Ct);

        Assert.Equal(task, await store.GetTaskAsync("t1", Ct));
        Assert.Null(await store.GetTaskAsync("nope", Ct));
    }

    [Fact]
    public async Task Write_UpdateWithNulls_KeepsStoredFieldsAndTakesNewState()
    {
        IDashboardStore store = await StoreAsync();
        await store.WriteAsync(Tasks(Task("t1", state: "RECEIVED", timestamp: 10, result: null) with { RetryOf = "t0" }), Ct);
        await store.WriteAsync(Tasks(new DashboardTask { Uuid = "t1", State = "SUCCESS", Timestamp = 11, Result = "5", Succeeded = 11, Runtime = 0.5 }), Ct);

        DashboardTask? t = await store.GetTaskAsync("t1", Ct);
        Assert.NotNull(t);
        Assert.Equal(("SUCCESS", 11.0, "tasks.add", "(2, 3)", "5", 9.0, 11.0, "t0"), (t.State, t.Timestamp, t.Name, t.Args, t.Result, t.Received, t.Succeeded, t.RetryOf));
    }

    [Fact]
    public async Task Query_FiltersSearchSortAndPaging_AsFlower()
    {
        IDashboardStore store = await StoreAsync();
        await store.WriteAsync(Tasks(
            Task("a1", "SUCCESS", 100, "tasks.add", "(2, 3)", "{}", "5", "celery@w1"),
            Task("a2", "FAILURE", 200, "tasks.add", "(1, 'x')", "{'mode': 'fast', 'n': 3}", null, "celery@w2"),
            Task("b1", "SUCCESS", 300, "tasks.mul", "(4, 5)", "{'mode': 'slow'}", "'twenty'", "celery@w1"),
            Task("b2", "RETRY", 400, "tasks.mul", "(6, 7)", "{}", null, "celery@w2")), Ct);

        async Task<string[]> Ids(TaskQuery q) => [.. (await store.QueryTasksAsync(q, Ct)).Tasks.Select(t => t.Uuid)];

        Assert.Equal(["b2", "b1", "a2", "a1"], await Ids(new TaskQuery()));
        Assert.Equal(["a1", "a2", "b1", "b2"], await Ids(new TaskQuery { SortBy = "timestamp" }));
        Assert.Equal(["a2"], await Ids(new TaskQuery { Search = TaskSearch.Parse("state:FAILURE") }));
        Assert.Equal(["a2"], await Ids(new TaskQuery { Search = TaskSearch.Parse("state:failure") }));
        Assert.Equal(["b2", "b1"], await Ids(new TaskQuery { Search = TaskSearch.Parse("name:tasks.mul") }));
        Assert.Equal(["a2"], await Ids(new TaskQuery { Search = TaskSearch.Parse("kwargs:mode=fast") }));
        Assert.Equal(["a2"], await Ids(new TaskQuery { Search = TaskSearch.Parse("kwargs:n=3") }));
        Assert.Equal(["b1"], await Ids(new TaskQuery { Search = TaskSearch.Parse("args:\"(4, 5\"") }));
        Assert.Equal(["b1"], await Ids(new TaskQuery { Search = TaskSearch.Parse("result:twenty") }));
        Assert.Equal(["b1", "a2"], await Ids(new TaskQuery { Search = TaskSearch.Parse("mode") }));
        Assert.Equal(["b1"], await Ids(new TaskQuery { Search = TaskSearch.Parse("name:tasks.mul state:SUCCESS") }));
        Assert.Equal(["b1", "a2"], await Ids(new TaskQuery { Search = TaskSearch.Parse("state:FAILURE OR (name:mul AND result:twenty)") }));
        Assert.Equal(["b1", "a1"], await Ids(new TaskQuery { Worker = "celery@w1" }));
        Assert.Equal(["a2", "a1"], await Ids(new TaskQuery { Name = "tasks.add" }));
        Assert.Equal(["b2"], await Ids(new TaskQuery { State = "RETRY" }));
        Assert.Equal(["b1", "a2"], await Ids(new TaskQuery { ReceivedStart = 150, ReceivedEnd = 350 }));
        Assert.Equal(["a1", "a2", "b1", "b2"], await Ids(new TaskQuery { SortBy = "name" }));
        Assert.Equal(["b2", "b1", "a2", "a1"], await Ids(new TaskQuery { SortBy = "-uuid" }));

        TaskPage page = await store.QueryTasksAsync(new TaskQuery { Offset = 1, Limit = 2 }, Ct);
        Assert.Equal(4, page.Total);
        Assert.Equal(["b1", "a2"], page.Tasks.Select(t => t.Uuid));
        TaskPage filtered = await store.QueryTasksAsync(new TaskQuery { Search = TaskSearch.Parse("name:tasks.add"), Limit = 1 }, Ct);
        Assert.Equal(2, filtered.Total);
        Assert.Single(filtered.Tasks);
    }

    [Fact]
    public async Task Update_MovesTheTaskBetweenStatesAndNames_AndTwoUpdatesInOneBatchMerge()
    {
        IDashboardStore store = await StoreAsync();
        await store.WriteAsync(Tasks(Task("t1", state: "RECEIVED", timestamp: 10, result: null), Task("t2", state: "RECEIVED", timestamp: 10, name: "tasks.mul")), Ct);
        await store.WriteAsync(Tasks(
            new DashboardTask { Uuid = "t1", State = "STARTED", Timestamp = 11, Started = 11 },
            new DashboardTask { Uuid = "t1", State = "SUCCESS", Timestamp = 12, Result = "5", Succeeded = 12 },
            new DashboardTask { Uuid = "t2", State = "RECEIVED", Timestamp = 10, Name = "tasks.renamed" }), Ct);

        DashboardTask? t1 = await store.GetTaskAsync("t1", Ct);
        Assert.Equal(("SUCCESS", 12.0, 11.0, 12.0, "5", "tasks.add"), (t1?.State, t1?.Timestamp, t1?.Started, t1?.Succeeded, t1?.Result, t1?.Name));

        async Task<string[]> Ids(TaskQuery q) => [.. (await store.QueryTasksAsync(q, Ct)).Tasks.Select(t => t.Uuid)];
        Assert.Equal(["t2"], await Ids(new TaskQuery { State = "RECEIVED" }));
        Assert.Equal(["t1"], await Ids(new TaskQuery { State = "SUCCESS" }));
        Assert.Empty(await Ids(new TaskQuery { State = "STARTED" }));
        Assert.Equal(["t2"], await Ids(new TaskQuery { Search = TaskSearch.Parse("state:received") }));
        Assert.Empty(await Ids(new TaskQuery { Search = TaskSearch.Parse("state:started") }));
        Assert.Equal(["t2"], await Ids(new TaskQuery { Name = "tasks.renamed" }));
        Assert.Empty(await Ids(new TaskQuery { Name = "tasks.mul" }));
        Assert.Equal(["t2"], await Ids(new TaskQuery { Search = TaskSearch.Parse("name:renamed") }));
        Assert.Equal(["tasks.add", "tasks.renamed"], await store.GetTaskNamesAsync(Ct));
    }

    [Fact]
    public async Task Query_ChildrenAndRetries_ByParentAndRetryOf()
    {
        IDashboardStore store = await StoreAsync();
        await store.WriteAsync(Tasks(Task("p"), Task("c1") with { ParentId = "p" }, Task("c2") with { ParentId = "p" }, Task("r1") with { RetryOf = "p" }), Ct);

        Assert.Equal(["c1", "c2"], (await store.QueryTasksAsync(new TaskQuery { ParentId = "p", SortBy = "uuid" }, Ct)).Tasks.Select(t => t.Uuid));
        Assert.Equal(["r1"], (await store.QueryTasksAsync(new TaskQuery { RetryOf = "p" }, Ct)).Tasks.Select(t => t.Uuid));
    }

    [Fact]
    public async Task Events_AppendedInOrder_PerTask()
    {
        IDashboardStore store = await StoreAsync();
        await store.WriteAsync(new DashboardBatch([Task("t1")], [], [
            new TaskEventRecord("t1", "task-received", 1, "w", """{"name":"tasks.add"}"""),
            new TaskEventRecord("t2", "task-received", 1, "w", "{}"),
        ]), Ct);
        await store.WriteAsync(new DashboardBatch([], [], [new TaskEventRecord("t1", "task-succeeded", 2, "w", """{"result":"5"}""")]), Ct);

        IReadOnlyList<TaskEventRecord> events = await store.GetEventsAsync("t1", ct: Ct);
        Assert.Equal(["task-received", "task-succeeded"], events.Select(e => e.Type));
        Assert.Equal("""{"result":"5"}""", events[1].FieldsJson);
        Assert.Empty(await store.GetEventsAsync("none", ct: Ct));
    }

    [Fact]
    public async Task Workers_ReplacedByHostname()
    {
        IDashboardStore store = await StoreAsync();
        var w1 = new DashboardWorker { Hostname = "w1@h", Freq = 2, LastHeartbeat = 100, Active = 1, Processed = 5, Succeeded = 4, Failed = 1, LoadAverage = [0.1, 0.2, 0.3], Queues = ["celery"], PoolSize = 4, SwIdent = "celeriac" };
        await store.WriteAsync(new DashboardBatch([], [w1, new DashboardWorker { Hostname = "w0@h" }], []), Ct);
        await store.WriteAsync(new DashboardBatch([], [w1 with { WentOffline = true, Processed = 6 }], []), Ct);

        IReadOnlyList<DashboardWorker> workers = await store.GetWorkersAsync(Ct);
        Assert.Equal(["w0@h", "w1@h"], workers.Select(w => w.Hostname));
        DashboardWorker w = workers[1];
        Assert.Equal((true, 6L, 4L, "celeriac", 4), (w.WentOffline, w.Processed!.Value, w.Succeeded, w.SwIdent, w.PoolSize!.Value));
        Assert.Equal([0.1, 0.2, 0.3], w.LoadAverage!);
        Assert.Equal(["celery"], w.Queues);
    }

    [Fact]
    public async Task Stats_CountPerMinuteAndState_AndRuntimePercentiles()
    {
        IDashboardStore store = await StoreAsync();
        var tasks = Enumerable.Range(1, 10).Select(i => new DashboardTask
        {
            Uuid = "s" + i, State = "SUCCESS", Name = "tasks.add", Received = 6000 + i, Succeeded = 6000 + i, Timestamp = 6000 + i, Runtime = i / 10.0,
        }).Append(new DashboardTask { Uuid = "f", State = "FAILURE", Name = "tasks.fail", Received = 6065, Failed = 6070, Timestamp = 6070 })
          .Append(new DashboardTask { Uuid = "old", State = "SUCCESS", Name = "tasks.add", Received = 10, Succeeded = 10, Timestamp = 10, Runtime = 99 });
        await store.WriteAsync(new DashboardBatch([.. tasks], [], []), Ct);

        DashboardStats stats = await store.GetStatsAsync(6000, Ct);
        Assert.Equal(
            [new ThroughputPoint(6000, "RECEIVED", 10), new ThroughputPoint(6000, "SUCCESS", 10), new ThroughputPoint(6060, "FAILURE", 1), new ThroughputPoint(6060, "RECEIVED", 1)],
            stats.Throughput);
        RuntimeStats add = Assert.Single(stats.Runtimes);
        Assert.Equal(("tasks.add", 10L, 0.5, 0.9, 1.0), (add.Task, add.Count, add.P50, add.P90, add.P99));
    }

    [Fact]
    public async Task TaskNames_DistinctSorted()
    {
        IDashboardStore store = await StoreAsync();
        await store.WriteAsync(Tasks(Task("1", name: "b"), Task("2", name: "a"), Task("3", name: "b"), Task("4", name: null)), Ct);
        Assert.Equal(["a", "b"], await store.GetTaskNamesAsync(Ct));
    }

    [Fact]
    public async Task Prune_ByAgeThenCount_KeepsNewestAndDropsTheirEvents()
    {
        IDashboardStore store = await StoreAsync();
        DashboardTask[] tasks = [.. Enumerable.Range(0, 10).Select(i => Task("t" + i, timestamp: 100 + i))];
        await store.WriteAsync(new DashboardBatch(tasks, [], [.. tasks.Select(t => new TaskEventRecord(t.Uuid, "task-succeeded", t.Timestamp, "w", "{}"))]), Ct);

        Assert.Equal(2, await store.PruneAsync(100, olderThan: 102, Ct));
        Assert.Equal(3, await store.PruneAsync(5, olderThan: 0, Ct));

        TaskPage left = await store.QueryTasksAsync(new TaskQuery(), Ct);
        Assert.Equal(["t9", "t8", "t7", "t6", "t5"], left.Tasks.Select(t => t.Uuid));
        Assert.Empty(await store.GetEventsAsync("t4", ct: Ct));
        Assert.Single(await store.GetEventsAsync("t5", ct: Ct));
        Assert.Equal(0, await store.PruneAsync(5, olderThan: 0, Ct));
    }

    [Fact]
    public async Task Prune_MoreThanOneChunk_RemovesEveryTaskBeyondTheBound()
    {
        IDashboardStore store = await StoreAsync();
        DashboardTask[] tasks = [.. Enumerable.Range(0, 2_500).Select(i => Task("t" + i.ToString("D4", System.Globalization.CultureInfo.InvariantCulture), timestamp: 100 + i))];
        await store.WriteAsync(new DashboardBatch(tasks, [], [.. tasks.Select(t => new TaskEventRecord(t.Uuid, "task-succeeded", t.Timestamp, "w", "{}"))]), Ct);

        Assert.Equal(2_400, await store.PruneAsync(100, olderThan: 0, Ct));

        TaskPage left = await store.QueryTasksAsync(new TaskQuery { Limit = 1_000 }, Ct);
        Assert.Equal(100, left.Total);
        Assert.Equal(("t2499", "t2400"), (left.Tasks[0].Uuid, left.Tasks[^1].Uuid));
        Assert.Empty(await store.GetEventsAsync("t2399", ct: Ct));
        Assert.Equal(100, (await store.QueryTasksAsync(new TaskQuery { State = "SUCCESS" }, Ct)).Total);
    }

    [Fact]
    public async Task Reopen_KeepsTasksEventsAndWorkers()
    {
        if (NotPersistentReason is { } why)
        {
            Assert.Skip(why);
        }

        IDashboardStore first = await StoreAsync();
        await first.WriteAsync(new DashboardBatch([Task("t1")], [new DashboardWorker { Hostname = "w@h", LastHeartbeat = 5 }], [new TaskEventRecord("t1", "task-succeeded", 1, "w", "{}")]), Ct);
        await first.DisposeAsync();
        _stores.Remove(first);

        IDashboardStore second = await StoreAsync();
        Assert.Equal("tasks.add", (await second.GetTaskAsync("t1", Ct))?.Name);
        Assert.Single(await second.GetEventsAsync("t1", ct: Ct));
        Assert.Equal(["w@h"], (await second.GetWorkersAsync(Ct)).Select(w => w.Hostname));
    }
}

/// <summary>The memory store.</summary>
public sealed class MemoryDashboardStoreTests : DashboardStoreConformanceTests
{
    private readonly MemoryDashboardStore _store = new();

    protected override string? NotPersistentReason => "memory:// keeps nothing across a restart";

    protected override Task<IDashboardStore> OpenStoreAsync() => System.Threading.Tasks.Task.FromResult<IDashboardStore>(_store);
}

/// <summary>The SQLite store, a file per test.</summary>
public sealed class SqliteDashboardStoreTests : DashboardStoreConformanceTests, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-dash-").FullName;

    protected override async Task<IDashboardStore> OpenStoreAsync() =>
        await DashboardStores.OpenAsync("sqlite:///" + Path.Combine(_directory, "dashboard.db"), Ct);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>The Redis store on a real server shared by the class, a key prefix per test.</summary>
public sealed class RedisDashboardStoreTests(Celeriac.Tests.Conformance.RedisServerFixture redis)
    : DashboardStoreConformanceTests, IClassFixture<Celeriac.Tests.Conformance.RedisServerFixture>
{
    private readonly string _prefix = "dash-" + Guid.NewGuid().ToString("N") + ":";

    protected override async Task<IDashboardStore> OpenStoreAsync() =>
        await DashboardStores.OpenAsync(redis.Server.Url(3) + "?prefix=" + _prefix, Ct);

    [Fact]
    public async Task Prefix_KeepsEveryKeyUnderIt_AndPruneLeavesNoIndexBehind()
    {
        await using IDashboardStore store = await OpenStoreAsync();
        await store.WriteAsync(new DashboardBatch(
            [new DashboardTask { Uuid = "t1", State = "SUCCESS", Name = "tasks.add", Timestamp = 1, Worker = "w@h", ParentId = "p" }],
            [new DashboardWorker { Hostname = "w@h" }],
            [new TaskEventRecord("t1", "task-succeeded", 1, "w@h", "{}")]), Ct);

        string[] ours = [.. (await redis.Server.CliAsync("-n", "3", "--scan", "--pattern", _prefix + "*")).Split('\n', StringSplitOptions.RemoveEmptyEntries)];
        Assert.Contains(_prefix + "task:t1", ours);
        Assert.Contains(_prefix + "state:SUCCESS", ours);

        Assert.Equal(1, await store.PruneAsync(0, olderThan: 0, Ct));
        string[] left = [.. (await redis.Server.CliAsync("-n", "3", "--scan", "--pattern", _prefix + "*")).Split('\n', StringSplitOptions.RemoveEmptyEntries)];
        Assert.Equal([_prefix + "workers"], left);
    }
}

/// <summary>The PostgreSQL store on the shared server, a database per test.</summary>
public sealed class PostgreSqlDashboardStoreTests : DashboardStoreConformanceTests
{
    private string? _url;

    protected override async Task<IDashboardStore> OpenStoreAsync() =>
        await DashboardStores.OpenAsync(_url ??= await Celeriac.Tests.Conformance.PostgresAssemblyFixture.NewDatabaseUrlAsync(), Ct);

    [Fact]
    public async Task SameUrl_TwoStoresAtOnce_CreateTheTablesOnce()
    {
        string url = await Celeriac.Tests.Conformance.PostgresAssemblyFixture.NewDatabaseUrlAsync();
        IDashboardStore[] stores = await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 4).Select(_ => DashboardStores.OpenAsync(url, Ct)));
        try
        {
            await stores[0].WriteAsync(new DashboardBatch([new DashboardTask { Uuid = "t1", State = "SUCCESS", Timestamp = 1 }], [], []), Ct);
            Assert.Equal("SUCCESS", (await stores[3].GetTaskAsync("t1", Ct))?.State);
        }
        finally
        {
            foreach (IDashboardStore s in stores)
            {
                await s.DisposeAsync();
            }
        }
    }
}
