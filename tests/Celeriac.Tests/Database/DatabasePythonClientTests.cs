using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Celeriac.Database;
using Celeriac.Results;
using Celeriac.Tests.Conformance;

namespace Celeriac.Tests.Database;

/// <summary>
/// Python Celery's own database backend (python3-celery with SQLAlchemy, psycopg2, pymysql) and Celeriac's on the same
/// database: each reads the other's results (values of every JSON kind, failures, result_extended rows) and groups.
/// </summary>
public abstract class DatabasePythonClientTests : IAsyncDisposable
{
    private readonly List<DatabaseResultBackend> _backends = [];

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>This test's database as Celeriac's URL and as Python's (with its driver).</summary>
    protected abstract ValueTask<(string Celeriac, string Python)> UrlsAsync();

    private const string Script = """
        import sys, json
        from celery import Celery
        from celery.result import GroupResult, AsyncResult
        url, mode = sys.argv[1], sys.argv[2]
        app = Celery(broker='memory://', backend=url)
        app.conf.result_extended = not mode.endswith('_plain')
        app.set_current()
        b = app.backend
        class Req:
            def __init__(self, name):
                self.task = name; self.args = [1, 'two']; self.kwargs = {'k': 3}; self.hostname = 'py@host'; self.retries = 1
                self.delivery_info = {'routing_key': 'pyq'}; self.group = None; self.parent_id = None; self.children = []
        if mode in ('read', 'read_plain'):
            for tid in sys.argv[3:]:
                m = b.get_task_meta(tid)
                r = m['result']
                if isinstance(r, BaseException):
                    r = {'type': type(r).__name__, 'args': list(r.args)}
                print(json.dumps({'status': m['status'], 'result': r, 'traceback': m.get('traceback'), 'name': m.get('name'),
                                  'args': m.get('args'), 'kwargs': m.get('kwargs'), 'worker': m.get('worker'), 'retries': m.get('retries'),
                                  'queue': m.get('queue'), 'date_done': str(m.get('date_done'))}))
        elif mode == 'write_plain':
            b.store_result(sys.argv[3], {'plain': True}, 'SUCCESS')
        elif mode == 'write':
            values = json.loads(sys.stdin.read())
            for tid, v in values.items():
                b.store_result(tid, v, 'SUCCESS', request=Req('py.task'))
            b.mark_as_failure('fail-' + sys.argv[3], ValueError('bad', 2), traceback='Traceback: py')
        elif mode == 'restore_group':
            g = b.restore_group(sys.argv[3])
            print(json.dumps([type(g).__name__, g.id, [r.id for r in g.results]]))
        elif mode == 'save_group':
            GroupResult(sys.argv[3], [AsyncResult(x) for x in sys.argv[4:]]).save(backend=b)
        """;

    private static async Task<string[]> PythonAsync(string url, string mode, IEnumerable<string> args, string stdin = "")
    {
        string script = "import sys; sys.argv = ['x', '" + url + "', '" + mode + "'" + string.Concat(args.Select(a => ", '" + a + "'")) + "]\n" + Script;
        return (await Python.RunAsync(script, stdin, Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private async Task<DatabaseResultBackend> BackendAsync(bool extended = true)
    {
        (string url, _) = await UrlsAsync();
        var b = new DatabaseResultBackend(new ResultBackendOptions { Url = new Uri(url), ResultExtended = extended });
        _backends.Add(b);
        return b;
    }

    private static readonly string[] s_values =
    [
        "42", "2.5", "1267650600228229401496703205376", "-9223372036854775809", "\"héllo 日本語 😀\"", "[1,\"two\",[3.5,null,true]]",
        """{"a":1,"b":{"c":[false,"d"]},"e":""}""", "null",
    ];

    [Fact]
    public async Task CeleriacStores_PythonReadsEveryValueFailureAndExtendedFields()
    {
        Assert.SkipUnless(Python.Available, "/usr/bin/python3 is missing");
        DatabaseResultBackend b = await BackendAsync();
        string[] ids = [.. s_values.Select(_ => Guid.NewGuid().ToString())];
        var done = new DateTimeOffset(2026, 1, 2, 3, 4, 5, 678_000 / 1000, TimeSpan.Zero);
        for (int i = 0; i < ids.Length; i++)
        {
            await b.StoreAsync(new TaskResultMeta
            {
                TaskId = ids[i],
                Status = TaskStates.Success,
                Result = Encoding.UTF8.GetBytes(s_values[i]),
                DateDone = done,
                Extended = new ResultExtension("tasks.add", "[1,2]"u8.ToArray(), """{"z":"é"}"""u8.ToArray(), "celeriac@host", 2, "celery"),
            }, Ct);
        }

        string failed = Guid.NewGuid().ToString();
        await b.StoreAsync(new TaskResultMeta
        {
            TaskId = failed,
            Status = TaskStates.Failure,
            Result = """{"exc_type":"ValueError","exc_message":["bad",2],"exc_module":"builtins"}"""u8.ToArray(),
            Traceback = "Traceback (most recent call last): ...",
            DateDone = done,
        }, Ct);

        (_, string python) = await UrlsAsync();
        string[] read = await PythonAsync(python, "read", [.. ids, failed]);

        Assert.Equal(ids.Length + 1, read.Length);
        for (int i = 0; i < ids.Length; i++)
        {
            JsonNode row = JsonNode.Parse(read[i])!;
            Assert.Equal("SUCCESS", (string?)row["status"]);
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(s_values[i]), row["result"]), $"{s_values[i]} read by Python as {row["result"]?.ToJsonString()}");
            Assert.Equal("tasks.add", (string?)row["name"]);
            Assert.Equal("[1,2]", row["args"]!.ToJsonString());
            Assert.Equal("é", (string?)row["kwargs"]!["z"]);
            Assert.Equal("celeriac@host", (string?)row["worker"]);
            Assert.Equal(2, (int?)row["retries"]);
            Assert.Equal("celery", (string?)row["queue"]);
            Assert.StartsWith("2026-01-02 03:04:05", (string?)row["date_done"], StringComparison.Ordinal);
        }

        JsonNode failure = JsonNode.Parse(read[^1])!;
        Assert.Equal("FAILURE", (string?)failure["status"]);
        Assert.Equal("""{"type":"ValueError","args":["bad",2]}""", failure["result"]!.ToJsonString());
        Assert.Equal("Traceback (most recent call last): ...", (string?)failure["traceback"]);
    }

    [Fact]
    public async Task PythonStores_CeleriacReadsEveryValueFailureAndExtendedFields()
    {
        Assert.SkipUnless(Python.Available, "/usr/bin/python3 is missing");
        DatabaseResultBackend b = await BackendAsync();
        await b.GetAsync("create-tables-first", Ct); // either side may create them; here Celeriac does, Python finds them
        string[] ids = [.. s_values.Select(_ => Guid.NewGuid().ToString())];
        var values = new JsonObject();
        for (int i = 0; i < ids.Length; i++)
        {
            values[ids[i]] = JsonNode.Parse(s_values[i]);
        }

        (_, string python) = await UrlsAsync();
        await PythonAsync(python, "write", [ids[0]], values.ToJsonString());

        for (int i = 0; i < ids.Length; i++)
        {
            TaskResultMeta? meta = await b.GetAsync(ids[i], Ct);
            Assert.NotNull(meta);
            Assert.Equal(TaskStates.Success, meta.Status);
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(s_values[i]), JsonNode.Parse(meta.Result.Span)), $"{s_values[i]} read as {Encoding.UTF8.GetString(meta.Result.Span)}");
            Assert.NotNull(meta.DateDone);
            Assert.InRange(meta.DateDone.Value, TimeProvider.System.GetUtcNow().AddMinutes(-5), TimeProvider.System.GetUtcNow().AddMinutes(5));
            Assert.NotNull(meta.Extended);
            Assert.Equal("py.task", meta.Extended.Name);
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse("[1,\"two\"]"), JsonNode.Parse(meta.Extended.Args.Span)));
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse("{\"k\":3}"), JsonNode.Parse(meta.Extended.Kwargs.Span)));
            Assert.Equal("py@host", meta.Extended.Worker);
            Assert.Equal(1, meta.Extended.Retries);
            Assert.Equal("pyq", meta.Extended.Queue);
        }

        TaskResultMeta? failure = await b.GetAsync("fail-" + ids[0], Ct);
        Assert.NotNull(failure);
        Assert.Equal(TaskStates.Failure, failure.Status);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"exc_type":"ValueError","exc_message":["bad",2],"exc_module":"builtins"}"""), JsonNode.Parse(failure.Result.Span)), Encoding.UTF8.GetString(failure.Result.Span));
        Assert.Equal("ValueError", failure.Exception!.Type);
        Assert.Equal("Traceback: py", failure.Traceback);
    }

    [Fact]
    public async Task PythonCreatesTablesWithoutResultExtended_CeleriacReadsAndWritesThem()
    {
        Assert.SkipUnless(Python.Available, "/usr/bin/python3 is missing");
        (_, string python) = await UrlsAsync();
        string theirs = Guid.NewGuid().ToString(), ours = Guid.NewGuid().ToString();
        await PythonAsync(python, "write_plain", [theirs]);
        DatabaseResultBackend b = await BackendAsync(extended: true);

        TaskResultMeta? read = await b.GetAsync(theirs, Ct);
        await b.StoreAsync(new TaskResultMeta
        {
            TaskId = ours,
            Status = TaskStates.Success,
            Result = "5"u8.ToArray(),
            DateDone = TimeProvider.System.GetUtcNow(),
            Extended = new ResultExtension("tasks.add", "[2,3]"u8.ToArray(), "{}"u8.ToArray(), "w", 0, "celery"),
        }, Ct);
        string[] back = await PythonAsync(python, "read_plain", [ours]);

        Assert.Equal("""{"plain":true}""", Encoding.UTF8.GetString(read!.Result.Span));
        Assert.Null(read.Extended);
        Assert.Equal(5, (int?)JsonNode.Parse(Assert.Single(back))!["result"]);
    }

    [Fact]
    public async Task Groups_SavedByEachSide_RestoredByTheOther()
    {
        Assert.SkipUnless(Python.Available, "/usr/bin/python3 is missing");
        DatabaseResultBackend b = await BackendAsync();
        string ours = Guid.NewGuid().ToString(), theirs = Guid.NewGuid().ToString();
        string[] ourMembers = [Guid.NewGuid().ToString(), Guid.NewGuid().ToString()];
        string[] theirMembers = [Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), Guid.NewGuid().ToString()];
        await b.SaveGroupAsync(ours, ourMembers, Ct);
        (_, string python) = await UrlsAsync();

        string[] restored = await PythonAsync(python, "restore_group", [ours]);
        await PythonAsync(python, "save_group", [theirs, .. theirMembers]);

        Assert.True(JsonNode.DeepEquals(JsonSerializer.SerializeToNode(new object[] { "GroupResult", ours, ourMembers }), JsonNode.Parse(Assert.Single(restored))), restored[0]);
        Assert.Equal(theirMembers, await b.RestoreGroupAsync(theirs, Ct));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (DatabaseResultBackend b in _backends)
        {
            await b.DisposeAsync();
        }

        await DisposeStoreAsync();
        GC.SuppressFinalize(this);
    }

    protected virtual ValueTask DisposeStoreAsync() => ValueTask.CompletedTask;
}

public sealed class PostgresDatabasePythonClientTests(PostgresDatabaseFixture pg) : DatabasePythonClientTests, IClassFixture<PostgresDatabaseFixture>
{
    private string? _database;

    protected override async ValueTask<(string Celeriac, string Python)> UrlsAsync()
    {
        _database ??= await pg.Server.CreateDatabaseAsync(Ct);
        return (pg.Server.Url(_database, "db+postgresql"), pg.Server.Url(_database, "db+postgresql+psycopg2"));
    }
}

public sealed class MariaDbDatabasePythonClientTests(MariaDbFixture mariadb) : DatabasePythonClientTests, IClassFixture<MariaDbFixture>
{
    private string? _database;

    protected override async ValueTask<(string Celeriac, string Python)> UrlsAsync()
    {
        _database ??= await mariadb.Server.CreateDatabaseAsync(Ct);
        return (mariadb.Server.Url(_database, "db+mariadb"), mariadb.Server.Url(_database, "db+mysql+pymysql") + "?charset=utf8mb4");
    }
}

public sealed class SqliteDatabasePythonClientTests : DatabasePythonClientTests
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-db-").FullName;

    protected override ValueTask<(string Celeriac, string Python)> UrlsAsync()
    {
        string url = "db+sqlite:///" + Path.Combine(_directory, "results.db");
        return ValueTask.FromResult((url, url));
    }

    protected override ValueTask DisposeStoreAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}
