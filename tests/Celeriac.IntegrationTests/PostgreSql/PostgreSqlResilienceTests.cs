using System.Globalization;
using System.Text.RegularExpressions;
using Celeriac.IntegrationTests.Support;
using Celeriac.TestServers;

namespace Celeriac.IntegrationTests.PostgreSql;

/// <summary>
/// Real worker processes on a real PostgreSQL server: two workers sharing 20,000 tasks, a worker killed mid-task, the
/// server restarted while tasks flow, and an idle worker that issues no statement and still wakes at once. Results
/// (where a test needs them) go to a SQLite file the processes share: the broker has no result backend of its own.
/// </summary>
public sealed partial class PostgreSqlResilienceTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-pg-").FullName;
    private PostgresServer? _postgres;
    private string _database = "";

    private string RecordFile => Path.Join(_dir, "runs.txt");

    private string ResultsUrl => "sqlite:///" + Path.Join(_dir, "results.db");

    private string BrokerUrl => _postgres!.Url(_database);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task StartServerAsync(IReadOnlyList<string>? settings = null)
    {
        _postgres = await PostgresServer.StartAsync(settings, Ct);
        _database = await _postgres.CreateDatabaseAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private Dictionary<string, string> Env(bool results, params (string Key, string Value)[] extra)
    {
        var env = new Dictionary<string, string>
        {
            ["CELERIAC_BROKER_URL"] = BrokerUrl,
            ["CELERIAC_TEST_RECORD"] = RecordFile,
        };
        if (results)
        {
            env["CELERIAC_RESULT_BACKEND"] = ResultsUrl;
        }

        foreach ((string key, string value) in extra)
        {
            env[key] = value;
        }

        return env;
    }

    private CeleriacApp Client(bool results) => new(new CeleriacOptions { BrokerUrl = BrokerUrl, ResultBackend = results ? ResultsUrl : null });

    private ChildProcess StartWorker(string name, Dictionary<string, string> env, string level = "info") =>
        ChildProcess.Start(_dir, env, ["worker", "-A", ChildProcess.TestTasksDll, "-c", "4", "-n", name + "@%h", "-l", level]);

    private static async Task WaitReadyAsync(ChildProcess worker)
    {
        try
        {
            await worker.Ready.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"worker not ready\n{worker.Stdout}\n{worker.Stderr}");
        }
    }

    private Dictionary<string, List<string>> RunsByToken() =>
        Celeriac.TestTasks.RecordingTasks.ReadRuns(RecordFile).Select(l => l.Split(' ')).GroupBy(p => p[0]).ToDictionary(g => g.Key, g => g.Select(p => p[1]).ToList());

    private async Task<long> RowsAsync() => Convert.ToInt64(await _postgres!.ScalarAsync("SELECT count(*) FROM celeriac_messages", _database, Ct), CultureInfo.InvariantCulture);

    [Fact]
    public async Task TwoWorkerProcesses_20000Tasks_EachRunsExactlyOnce()
    {
        const int Count = 20_000;
        await StartServerAsync();
        Dictionary<string, string> env = Env(results: false);
        await using ChildProcess w1 = StartWorker("w1", env, "warning");
        await using ChildProcess w2 = StartWorker("w2", env, "warning");
        await WaitReadyAsync(w1);
        await WaitReadyAsync(w2);

        await using (CeleriacApp app = Client(results: false))
        {
            CeleriacTask record = app.Signature("test.record");
            for (int i = 0; i < Count; i += 500)
            {
                await Task.WhenAll(Enumerable.Range(i, 500).Select(n => record.DelayAsync("t" + n)));
            }
        }

        // Every message acked (deleted) means every task ran; none can run again after that.
        using var within = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        within.CancelAfter(TimeSpan.FromSeconds(120));
        while (await RowsAsync() > 0)
        {
            await Task.Delay(200, within.Token);
        }

        await w1.SignalAsync("TERM");
        await w2.SignalAsync("TERM");
        Assert.Equal(0, await w1.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, await w2.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        Dictionary<string, List<string>> runs = RunsByToken();
        Assert.Equal(Count, runs.Count);
        Assert.All(runs, kv => Assert.True(kv.Value.Count == 1, $"{kv.Key} ran {kv.Value.Count} times"));
        var perPid = runs.Values.SelectMany(v => v).GroupBy(p => p).ToDictionary(g => g.Key, g => g.Count());
        Assert.True(perPid.Count == 2, $"both workers should have run tasks: {string.Join(", ", perPid.Select(kv => $"{kv.Key}={kv.Value}"))}");
    }

    [Fact]
    public async Task KilledWorker_LateAckedSleep_RunsAgainOnAnotherWorkerAfterVisibilityTimeout()
    {
        await StartServerAsync();
        Dictionary<string, string> env = Env(true, ("CELERIAC_ACKS_LATE", "true"), ("CELERIAC_VISIBILITY_TIMEOUT", "3"),
            ("CELERIAC_TRACK_STARTED", "true"), ("CELERIAC_RESULT_EXTENDED", "true"));
        await using CeleriacApp app = Client(results: true);
        string victimNode;
        AsyncResult result;
        await using (ChildProcess victim = StartWorker("victim", env))
        {
            await WaitReadyAsync(victim);
            result = await app.Signature("tasks.sleep").DelayAsync(2.0);
            victimNode = await ChildProcess.KillOnceStartedAsync(victim, result);
        }

        // The killed worker's message is still a row, leased to nobody alive.
        Assert.Equal(1, await RowsAsync());
        await using ChildProcess rescuer = StartWorker("rescuer", env);
        await WaitReadyAsync(rescuer);
        double slept = await result.GetAsync<double>(TimeSpan.FromSeconds(60), Ct);

        Assert.Equal(2.0, slept);
        Assert.StartsWith("victim@", victimNode, StringComparison.Ordinal);
        Assert.StartsWith("rescuer@", result.Meta!.Extended!.Worker, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PostgresRestarted_While5000TasksFlow_EveryTaskCompletesOnceAndWorkersGoOn()
    {
        const int Count = 5000;
        await StartServerAsync();
        Dictionary<string, string> env = Env(results: true);
        await using ChildProcess w1 = StartWorker("w1", env);
        await using ChildProcess w2 = StartWorker("w2", env);
        await WaitReadyAsync(w1);
        await WaitReadyAsync(w2);
        await using CeleriacApp app = Client(results: true);
        (int sent, int missing, TimeSpan elapsed) = await TaskFlow.RunAsync(
            app,
            Count,
            async () =>
            {
                // The server goes away 3 s into the flow (a fast shutdown, as an operator's restart) and is back 5 s later.
                await _postgres!.StopAsync();
                await Task.Delay(TimeSpan.FromSeconds(5), Ct);
                await _postgres.StartAgainAsync(Ct);
            },
            Ct);

        Dictionary<string, List<string>> runs = RunsByToken();
        Assert.True(missing == 0, $"{missing} of {sent} results missing; {runs.Count} tokens ran; rows {await RowsAsync()}\nw1:\n{Tail(w1.Stderr)}\nw2:\n{Tail(w2.Stderr)}");
        Assert.Equal(Count, runs.Count);

        // At least once: a task whose ack was lost with the connection may run again, never zero times.
        Assert.All(runs, kv => Assert.NotEmpty(kv.Value));
        Assert.True(elapsed > TimeSpan.FromSeconds(8), "the flow should have spanned the outage");

        // Each worker said once that the server went away and once that it came back, and both still run tasks.
        foreach (ChildProcess w in (ChildProcess[])[w1, w2])
        {
            Assert.True(Unreachable().Count(w.Stderr) == 1, Tail(w.Stderr));
            Assert.True(Reachable().Count(w.Stderr) == 1, Tail(w.Stderr));
        }

        Assert.Equal("after", await (await app.Signature("test.record").DelayAsync("after")).GetAsync<string>(TimeSpan.FromSeconds(30), Ct));
    }

    [Fact]
    public async Task IdleWorker_IssuesNoStatementFor30Seconds_AndWakesWithin50MsOfAPublish()
    {
        // Every statement is logged with the application name of its connection: the worker's is its own. Celery's
        // workers publish a heartbeat event every 2 s by default (one NOTIFY statement each); without it, nothing.
        await StartServerAsync(["log_statement=all", "log_line_prefix=%m [%p] app=%a "]);
        Dictionary<string, string> env = Env(true, ("CELERIAC_RESULT_EXTENDED", "true"), ("CELERIAC_WITHOUT_HEARTBEAT", "true"));
        env["CELERIAC_BROKER_URL"] = BrokerUrl + "?Application%20Name=idleworker";
        await using ChildProcess worker = StartWorker("idle", env, "warning");
        await WaitReadyAsync(worker);
        await using CeleriacApp app = Client(results: true);

        // A first task warms the worker up; then it has nothing to do.
        Assert.Equal("warm", await (await app.Signature("test.record").DelayAsync("warm")).GetAsync<string>(TimeSpan.FromSeconds(30), Ct));
        await Task.Delay(TimeSpan.FromSeconds(1), Ct);
        int before = WorkerStatements();
        Assert.True(before > 0, "the worker's statements should be in the log (it took the warm-up task)");

        await Task.Delay(TimeSpan.FromSeconds(30), Ct);
        int idle = WorkerStatements() - before;

        DateTimeOffset published = TimeProvider.System.GetUtcNow();
        AsyncResult result = await app.Signature("test.record").DelayAsync("wake");
        Assert.Equal("wake", await result.GetAsync<string>(TimeSpan.FromSeconds(10), Ct));
        TimeSpan woke = result.Meta!.DateDone!.Value - published;
        TestContext.Current.TestOutputHelper?.WriteLine($"idle statements: {idle}; publish to date_done: {woke.TotalMilliseconds:F1} ms");

        Assert.True(idle == 0, $"the idle worker issued {idle} statement(s):\n{string.Join('\n', WorkerLines().TakeLast(20))}");

        // Measured as the worker saw it: the task's end (date_done) is after the worker took the message.
        Assert.True(woke < TimeSpan.FromMilliseconds(50), $"the worker finished the task {woke.TotalMilliseconds:F1} ms after the publish");

        // The server's log reaches the test through a pipe: the woken worker's lines may arrive a moment after its result.
        Assert.True(
            await ProcessTree.WaitUntilAsync(() => WorkerStatements() > before, TimeSpan.FromSeconds(10)),
            "the statements of the woken worker should be logged, as the idle ones would have been");
    }

    private IEnumerable<string> WorkerLines() =>
        _postgres!.Log.Split('\n').Where(l => l.Contains("app=idleworker ", StringComparison.Ordinal) && (l.Contains("statement:", StringComparison.Ordinal) || l.Contains("execute ", StringComparison.Ordinal)));

    private int WorkerStatements() => WorkerLines().Count();

    private static string Tail(string log) => string.Join('\n', log.Split('\n').Where(l => !l.Contains("INFO", StringComparison.Ordinal) || l.Contains("PostgreSQL", StringComparison.Ordinal)).TakeLast(30));

    [GeneratedRegex("is unreachable")]
    private static partial Regex Unreachable();

    [GeneratedRegex("is reachable again")]
    private static partial Regex Reachable();
}
