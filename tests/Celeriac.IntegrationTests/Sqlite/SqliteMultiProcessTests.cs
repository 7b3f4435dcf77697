using System.Text.Json;
using Celeriac.IntegrationTests.Support;

namespace Celeriac.IntegrationTests.Sqlite;

/// <summary>
/// Several real processes (workers and CLI clients) sharing one SQLite file, as a user runs them on one machine.
/// </summary>
public sealed class SqliteMultiProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-mp-").FullName;

    private string BrokerUrl => "sqlite:///" + Path.Join(_dir, "celeriac.db");

    private string RecordFile => Path.Join(_dir, "runs.txt");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private Dictionary<string, string> Env(params (string Key, string Value)[] extra)
    {
        var env = new Dictionary<string, string>
        {
            ["CELERIAC_BROKER_URL"] = BrokerUrl,
            ["CELERIAC_TEST_RECORD"] = RecordFile,
        };
        foreach ((string key, string value) in extra)
        {
            env[key] = value;
        }

        return env;
    }

    private ChildProcess StartWorker(string name, Dictionary<string, string> env, params string[] extra) =>
        ChildProcess.Start(_dir, env, ["worker", "-A", ChildProcess.TestTasksDll, "-c", "4", "-n", name + "@%h", .. extra]);

    private static async Task WaitReadyAsync(ChildProcess worker)
    {
        try
        {
            await worker.Ready.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"worker not ready\n{worker.Stdout}\n{worker.Stderr}");
        }
    }

    [Fact]
    public async Task TwoWorkerProcesses_2000Tasks_EachRunsExactlyOnce()
    {
        await using ChildProcess w1 = StartWorker("w1", Env());
        await using ChildProcess w2 = StartWorker("w2", Env());
        await WaitReadyAsync(w1);
        await WaitReadyAsync(w2);

        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = BrokerUrl });
        CeleriacTask record = app.Signature("test.record");
        AsyncResult[] results = await Task.WhenAll(Enumerable.Range(0, 2000).Select(i => record.DelayAsync("t" + i)));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(120));
        foreach (AsyncResult r in results)
        {
            await r.GetAsync<string>(null, cts.Token);
        }

        await w1.SignalAsync("TERM");
        await w2.SignalAsync("TERM");
        Assert.Equal(0, await w1.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, await w2.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        string[] runs = Celeriac.TestTasks.RecordingTasks.ReadRuns(RecordFile);
        var byToken = runs.Select(l => l.Split(' ')).GroupBy(p => p[0]).ToDictionary(g => g.Key, g => g.Select(p => p[1]).ToList());
        Assert.Equal(2000, byToken.Count);
        Assert.All(byToken, kv => Assert.Single(kv.Value));
        Assert.Equal(2000, runs.Length);
        var pids = runs.Select(l => l.Split(' ')[1]).Distinct().ToList();
        Assert.True(pids.Count == 2, $"both workers should have run tasks; runs per pid: {string.Join(", ", runs.GroupBy(l => l.Split(' ')[1]).Select(g => $"{g.Key}={g.Count()}"))}");
    }

    [Fact]
    public async Task KilledWorker_LateAckedSleep_RunsAgainOnAnotherWorkerAfterVisibilityTimeout()
    {
        Dictionary<string, string> env = Env(("CELERIAC_ACKS_LATE", "true"), ("CELERIAC_VISIBILITY_TIMEOUT", "3"),
            ("CELERIAC_TRACK_STARTED", "true"), ("CELERIAC_RESULT_EXTENDED", "true"));
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = BrokerUrl });
        string victimNode;
        AsyncResult result;
        await using (ChildProcess victim = StartWorker("victim", env))
        {
            await WaitReadyAsync(victim);
            result = await app.Signature("tasks.sleep").DelayAsync(2.0);
            victimNode = await ChildProcess.KillOnceStartedAsync(victim, result);
        }

        await using ChildProcess rescuer = StartWorker("rescuer", env);
        await WaitReadyAsync(rescuer);
        double slept = await result.GetAsync<double>(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        Assert.Equal(2.0, slept);
        Assert.StartsWith("victim@", victimNode, StringComparison.Ordinal);
        Assert.StartsWith("rescuer@", result.Meta!.Extended!.Worker, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CliInSeparateProcesses_CallThenResult_GivesResultsErrorsAndWorkerGoesOn()
    {
        Dictionary<string, string> env = Env();
        await using ChildProcess worker = StartWorker("cli", env, "-l", "info");
        await WaitReadyAsync(worker);
        TimeSpan limit = TimeSpan.FromSeconds(60);

        async Task<(int Code, string Out, string Err)> CallAndWaitAsync(string task, string args)
        {
            (int callCode, string id, string callErr) = await ChildProcess.RunAsync(_dir, env, limit, "call", task, "--args", args);
            Assert.True(callCode == 0, callErr);
            Assert.True(Guid.TryParse(id, out _), $"call should print a task id, printed: {id}");
            return await ChildProcess.RunAsync(_dir, env, limit, "result", id, "--wait", "30");
        }

        (int code, string output, _) = await CallAndWaitAsync("tasks.add", "[2,3]");
        Assert.Equal((0, "5"), (code, output));

        (code, _, string error) = await CallAndWaitAsync("tasks.fail", "[\"boom\"]");
        Assert.Equal(1, code);
        Assert.Contains("boom", error, StringComparison.Ordinal);
        Assert.StartsWith("FAILURE", error, StringComparison.Ordinal);

        (code, _, error) = await CallAndWaitAsync("tasks.add", "[\"a\"]");
        Assert.Equal(1, code);
        Assert.Contains("TypeError", error, StringComparison.Ordinal);
        Assert.Contains("'x'", error, StringComparison.Ordinal);

        (code, output, _) = await CallAndWaitAsync("tasks.echo", "[123456789012345678901234567890]");
        Assert.Equal((0, "123456789012345678901234567890"), (code, output));

        Assert.Contains("Task tasks.add[", worker.Stderr, StringComparison.Ordinal);
        Assert.Contains("succeeded in", worker.Stderr, StringComparison.Ordinal);
        _ = JsonDocument.Parse(output);
    }
}
