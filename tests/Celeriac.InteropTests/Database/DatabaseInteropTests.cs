using System.Diagnostics;
using System.Text.Json;
using Celeriac.InteropTests.Redis;
using Celeriac.TestServers;
using Celeriac.Worker;

namespace Celeriac.InteropTests.Database;

/// <summary>A real PostgreSQL and a real MariaDB server for the database interop tests (a database per test).</summary>
public sealed class DatabaseServersFixture : IAsyncLifetime
{
    public PostgresServer Postgres { get; private set; } = null!;

    public MariaDbServer MariaDb { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Task<PostgresServer> pg = PostgresServer.StartAsync();
        Task<MariaDbServer> maria = MariaDbServer.StartAsync();
        Postgres = await pg;
        MariaDb = await maria;
    }

    public async ValueTask DisposeAsync()
    {
        await Postgres.DisposeAsync();
        await MariaDb.DisposeAsync();
    }
}

/// <summary>
/// Celery's database result backend shared by a Celeriac worker or client and a real Python Celery 5.2 worker or
/// client, on the fixture's Redis broker: each reads the other's results (int, float, big int, unicode, list, dict,
/// failures), result_extended rows and groups; and a chord joins on the database.
/// </summary>
public abstract class DatabaseInteropTests(RedisInteropFixture redis) : IAsyncDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(20);
    private readonly string _queue = "db." + Guid.NewGuid().ToString("N")[..8];
    private CeleriacApp? _app;
    private CancellationTokenSource? _stop;
    private Task? _worker;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A new database's URL as Celeriac and as Python (with its driver) name it.</summary>
    protected abstract Task<(string Celeriac, string Python)> NewDatabaseAsync();

    private string BrokerUrl => redis.Server.Url(9);

    private async Task<CeleriacApp> StartCeleriacAsync(string backend, bool worker)
    {
        _app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = BrokerUrl,
            ResultBackend = backend,
            ResultExtended = true,
            DefaultQueue = _queue,
            Concurrency = 4,
            NodeName = "celeriac-db@localhost",
            Queues = { _queue },
        });
        _app.AddTasksFromAssembly(typeof(Quickstart.Tasks).Assembly);
        if (worker)
        {
            _stop = new CancellationTokenSource();
            var w = new CeleriacWorker(_app);
            _worker = Task.Run(() => w.RunAsync(_stop.Token));
            await Task.WhenAny(w.Ready, _worker).WaitAsync(TimeSpan.FromSeconds(30));
        }

        return _app;
    }

    private static readonly string[] s_values = ["42", "2.5", "1267650600228229401496703205376", "\"héllo 日本語 😀\"", "[1,\"two\",[3.5,null,true]]", """{"a":1,"b":{"c":[false,"d"]}}"""];

    private const string ReadScript = """
        import sys, json
        from celery import Celery
        app = Celery('interop', broker='memory://', backend=sys.argv[1])
        app.conf.result_extended = True
        out = {}
        for tid in sys.argv[3:]:
            r = app.AsyncResult(tid)
            entry = {'state': r.state}
            try:
                v = r.get(timeout=10)
                entry['value'] = v
                entry['type'] = type(v).__name__
            except Exception as e:
                entry['exc_type'] = type(e).__name__
                entry['exc_message'] = str(e)
            m = app.backend.get_task_meta(tid)
            for k in ('name', 'args', 'kwargs', 'worker', 'retries', 'queue'):
                entry[k] = m.get(k)
            out[tid] = entry
        g = app.GroupResult.restore(sys.argv[2], app=app)
        out['group'] = [type(g).__name__, g.id, [x.id for x in g.results], g.get(timeout=10)]
        print(json.dumps(out))
        """;

    [Fact]
    public async Task CeleriacWorker_PythonClientReadsValuesFailureExtendedRowsAndGroup()
    {
        (string celeriacUrl, string pythonUrl) = await NewDatabaseAsync();
        CeleriacApp app = await StartCeleriacAsync(celeriacUrl, worker: true);
        List<AsyncResult> sent = [];
        foreach (string v in s_values)
        {
            sent.Add(await app.SendTaskAsync("tasks.echo", [JsonDocument.Parse(v).RootElement], ct: Ct));
        }

        AsyncResult fail = await app.SendTaskAsync("tasks.fail", ["boom"], ct: Ct);
        GroupResult group = await Canvas.Group(app.Signature("tasks.add").S(1, 2), app.Signature("tasks.add").S(3, 4)).ApplyAsync(ct: Ct);
        await group.SaveAsync(Ct);
        foreach (AsyncResult r in (AsyncResult[])[.. sent, fail, .. group.Results])
        {
            await r.WaitAsync(s_wait, Ct);
        }

        string output = await PythonCelery.RunAsync(ReadScript, [pythonUrl, group.Id, .. sent.Select(r => r.Id), fail.Id]);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement seen = doc.RootElement;

        string[] types = ["int", "float", "int", "str", "list", "dict"];
        for (int i = 0; i < s_values.Length; i++)
        {
            JsonElement e = seen.GetProperty(sent[i].Id);
            Assert.Equal("SUCCESS", e.GetProperty("state").GetString());
            Assert.Equal(types[i], e.GetProperty("type").GetString());
            Assert.Equal(JsonText.Canonical(s_values[i]), JsonText.Canonical(e.GetProperty("value").GetRawText()));
            Assert.Equal("tasks.echo", e.GetProperty("name").GetString());
            Assert.Equal(JsonText.Canonical("[" + s_values[i] + "]"), JsonText.Canonical(e.GetProperty("args").GetRawText()));
            Assert.Equal("celeriac-db@localhost", e.GetProperty("worker").GetString());
            Assert.Equal(_queue, e.GetProperty("queue").GetString());
        }

        JsonElement failed = seen.GetProperty(fail.Id);
        Assert.Equal("FAILURE", failed.GetProperty("state").GetString());
        Assert.Equal("InvalidOperationException", failed.GetProperty("exc_type").GetString());
        Assert.Equal("boom", failed.GetProperty("exc_message").GetString());
        Assert.Equal(JsonText.Canonical($$"""["GroupResult","{{group.Id}}",["{{group.Results[0].Id}}","{{group.Results[1].Id}}"],[3,7]]"""), JsonText.Canonical(seen.GetProperty("group").GetRawText()));
    }

    [Fact]
    public async Task PythonWorker_CeleriacClientReadsValuesFailureExtendedRowsAndGroup()
    {
        (string celeriacUrl, string pythonUrl) = await NewDatabaseAsync();
        string node = "py-db-" + _queue + "@localhost";
        await using PythonWorker python = await PythonWorker.StartAsync(BrokerUrl, pythonUrl, _queue, concurrency: 2, nodeName: node,
            environment: new Dictionary<string, string> { ["CELERY_RESULT_EXTENDED"] = "1" });
        CeleriacApp app = await StartCeleriacAsync(celeriacUrl, worker: false);
        List<AsyncResult> sent = [];
        foreach (string v in s_values)
        {
            sent.Add(await app.SendTaskAsync("tasks.echo", [JsonDocument.Parse(v).RootElement], ct: Ct));
        }

        AsyncResult fail = await app.SendTaskAsync("tasks.fail", ["boom"], ct: Ct);

        for (int i = 0; i < s_values.Length; i++)
        {
            TaskResultMeta meta = await sent[i].WaitAsync(s_wait, Ct);
            Assert.Equal(TaskStates.Success, meta.Status);
            Assert.Equal(JsonText.Canonical(s_values[i]), JsonText.Canonical(meta.Result));
            Assert.NotNull(meta.Extended);
            Assert.Equal("tasks.echo", meta.Extended.Name);
            Assert.Equal(JsonText.Canonical("[" + s_values[i] + "]"), JsonText.Canonical(meta.Extended.Args));
            Assert.Equal(node, meta.Extended.Worker);
            Assert.Equal(_queue, meta.Extended.Queue);
        }

        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => fail.GetAsync<int>(s_wait, Ct));
        Assert.Equal("boom", error.RemoteMessage);

        string saved = await PythonCelery.RunAsync("""
            import sys, json
            from celery import group
            from interop_tasks import app, add
            g = group(add.s(1, 1).set(queue=sys.argv[1]), add.s(2, 2).set(queue=sys.argv[1])).apply_async()
            g.save()
            print(json.dumps([g.id, [r.id for r in g.results]]))
            """, new Dictionary<string, string> { ["CELERY_BROKER_URL"] = BrokerUrl, ["CELERY_RESULT_BACKEND"] = pythonUrl }, _queue);
        using JsonDocument ids = JsonDocument.Parse(saved);
        string groupId = ids.RootElement[0].GetString()!;
        GroupResult? restored = await GroupResult.RestoreAsync(app, groupId, Ct);
        Assert.NotNull(restored);
        Assert.Equal(ids.RootElement[1].EnumerateArray().Select(e => e.GetString()), restored.Results.Select(r => r.Id));
        Assert.Equal([2L, 4L], await restored.JoinAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task Chord_RunByCeleriacWorker_JoinsOnTheDatabase()
    {
        (string celeriacUrl, _) = await NewDatabaseAsync();
        CeleriacApp app = await StartCeleriacAsync(celeriacUrl, worker: true);
        CeleriacTask add = app.Signature("tasks.add"), xsum = app.Signature("tasks.xsum");

        var clock = Stopwatch.StartNew();
        AsyncResult chord = await Canvas.Chord(Enumerable.Range(0, 20).Select(i => add.S(i, i)), xsum.S()).ApplyAsync(ct: Ct);

        Assert.Equal(380, await chord.GetAsync<long>(s_wait, Ct));
        Assert.True(clock.Elapsed < s_wait);
    }

    [Fact]
    public async Task WorkerRoundTrip_FiftyTasksOneAfterAnother_EachReturnsItsSum()
    {
        (string celeriacUrl, _) = await NewDatabaseAsync();
        CeleriacApp app = await StartCeleriacAsync(celeriacUrl, worker: true);
        CeleriacTask add = app.Signature("tasks.add");
        Assert.Equal(2, await (await add.DelayAsync(1, 1)).GetAsync<long>(s_wait, Ct));
        var times = new List<double>();
        for (int i = 0; i < 50; i++)
        {
            var clock = Stopwatch.StartNew();
            long sum = await (await add.DelayAsync(i, 1)).GetAsync<long>(s_wait, Ct);
            times.Add(clock.Elapsed.TotalMilliseconds);
            Assert.Equal(i + 1, sum);
        }

        times.Sort();
        TestContext.Current.TestOutputHelper?.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{GetType().Name}: worker round trip (send, run, store, get) p50 {times[25]:F1} ms, p90 {times[45]:F1} ms"));
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop is not null && _worker is not null)
        {
            await _stop.CancelAsync();
            await _worker.WaitAsync(TimeSpan.FromSeconds(15));
        }

        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        _stop?.Dispose();
        GC.SuppressFinalize(this);
    }
}

public sealed class PostgresDatabaseInteropTests(RedisInteropFixture redis, DatabaseServersFixture servers) : DatabaseInteropTests(redis), IClassFixture<DatabaseServersFixture>
{
    protected override async Task<(string Celeriac, string Python)> NewDatabaseAsync()
    {
        string db = await servers.Postgres.CreateDatabaseAsync(Ct);
        return (servers.Postgres.Url(db, "db+postgresql"), servers.Postgres.Url(db, "db+postgresql+psycopg2"));
    }
}

public sealed class MariaDbDatabaseInteropTests(RedisInteropFixture redis, DatabaseServersFixture servers) : DatabaseInteropTests(redis), IClassFixture<DatabaseServersFixture>
{
    protected override async Task<(string Celeriac, string Python)> NewDatabaseAsync()
    {
        string db = await servers.MariaDb.CreateDatabaseAsync(Ct);
        return (servers.MariaDb.Url(db, "db+mariadb"), servers.MariaDb.Url(db, "db+mysql+pymysql") + "?charset=utf8mb4");
    }
}

public sealed class SqliteDatabaseInteropTests(RedisInteropFixture redis) : DatabaseInteropTests(redis), IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-db-interop-").FullName;

    protected override Task<(string Celeriac, string Python)> NewDatabaseAsync()
    {
        string url = "db+sqlite:///" + Path.Combine(_directory, "results.db");
        return Task.FromResult((url, url));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
