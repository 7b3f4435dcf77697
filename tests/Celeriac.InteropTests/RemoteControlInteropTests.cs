using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Celeriac.Control;
using Celeriac.Worker;

namespace Celeriac.InteropTests;

/// <summary>
/// Remote control across languages, with a Celery 5.2 worker and a Celeriac worker on one broker: Celery's own command
/// line (<c>celery inspect</c>, <c>celery control</c>, <c>celery status</c>, <c>celery events</c>) and Python's
/// <c>app.control</c> see and steer the Celeriac worker as they do a Celery worker, and Celeriac's <c>app.Control</c>
/// steers the Celery worker. Each broker's subclass supplies the broker; tests that look at a worker's tasks or change a
/// worker's settings start a worker of their own (own queue, own node name), so that other tests' tasks never show.
/// </summary>
public abstract class RemoteControlInteropTests
{
    /// <summary>How long any one wait may take.</summary>
    protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>The test's cancellation.</summary>
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>CELERY_BROKER_URL and CELERY_RESULT_BACKEND of the fixture, for Python processes.</summary>
    protected abstract IReadOnlyDictionary<string, string> PythonEnvironment { get; }

    /// <summary>The node name of the fixture's shared Celery worker.</summary>
    protected abstract string PythonNode { get; }

    /// <summary>Starts the fixture's shared Celeriac worker if it is not yet, and returns its node name.</summary>
    protected abstract Task<string> CeleriacNodeAsync();

    /// <summary>A new app on the fixture's broker and result backend (the caller disposes it).</summary>
    protected abstract CeleriacApp NewApp(Action<CeleriacOptions>? configure = null);

    /// <summary>Starts a Celery worker of the test's own on the fixture's broker (killed on dispose).</summary>
    protected abstract Task<PythonWorker> StartPythonWorkerAsync(string queue, string node, string pool, int concurrency);

    [Fact]
    public async Task CeleryInspectPingAndStatus_AndDotNetPing_ListBothWorkers()
    {
        string py = PythonNode;
        string net = await CeleriacNodeAsync();

        // celery inspect ping -d py,net --json: {node: {"ok": "pong"}} from both.
        CeleryCliResult json = (await CeleryCli.RunAsync(PythonEnvironment, "inspect", "ping", "-d", $"{py},{net}", "-t", "5", "--json")).Succeeded();
        using (JsonDocument doc = json.Json())
        {
            Assert.Equal("pong", doc.RootElement.GetProperty(py).GetProperty("ok").GetString());
            Assert.Equal("pong", doc.RootElement.GetProperty(net).GetProperty("ok").GetString());
        }

        // As a user reads it.
        CeleryCliResult plain = (await CeleryCli.RunAsync(PythonEnvironment, "inspect", "ping", "-d", $"{py},{net}", "-t", "5")).Succeeded();
        Assert.Contains($"->  {net}: OK", plain.Stdout, StringComparison.Ordinal);
        Assert.Contains($"->  {py}: OK", plain.Stdout, StringComparison.Ordinal);
        Assert.Contains("2 nodes online.", plain.Stdout, StringComparison.Ordinal);

        // celery status (every worker on the broker: other tests' too) lists both.
        CeleryCliResult status = (await CeleryCli.RunAsync(PythonEnvironment, "status", "-t", "5")).Succeeded();
        Assert.Contains($"->  {net}: OK", status.Stdout, StringComparison.Ordinal);
        Assert.Contains($"->  {py}: OK", status.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"\d+ nodes online\.", status.Stdout);

        // Celeriac's app.Control.PingAsync: both answer pong.
        await using CeleriacApp client = NewApp();
        IReadOnlyDictionary<string, ControlReply> pongs = await client.Control.PingAsync(new ControlOptions { Destination = [py, net], Reply = true, Timeout = TimeSpan.FromSeconds(10) }, Ct);
        Assert.Equal([net, py], pongs.Keys.Order(StringComparer.Ordinal));
        Assert.All(pongs.Values, r => Assert.Equal("pong", r.Ok));

        // celeriac inspect ping (the Quickstart is the celeriac CLI): both, as Celery's CLI prints them.
        (int exit, string stdout) = await CeleriacCliAsync(client.Options.BrokerUrl, "inspect", "ping", "-d", $"{py},{net}", "-t", "5");
        Assert.Equal(0, exit);
        Assert.Contains($"->  {net}: OK", stdout, StringComparison.Ordinal);
        Assert.Contains($"->  {py}: OK", stdout, StringComparison.Ordinal);
        Assert.Contains("2 nodes online.", stdout, StringComparison.Ordinal);
    }

    /// <summary>Runs <c>celeriac args...</c> (the built Quickstart) on <paramref name="broker"/> and returns its exit code and output.</summary>
    private static async Task<(int ExitCode, string Stdout)> CeleriacCliAsync(string broker, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Join(AppContext.BaseDirectory, "Quickstart.dll"));
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (string name in start.Environment.Keys.Where(n => n.StartsWith("CELERIAC_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(name);
        }

        start.Environment["CELERIAC_BROKER_URL"] = broker;
        using var process = System.Diagnostics.Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(Ct);
        Task<string> stderr = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    [Fact]
    public async Task CeleryInspect_ActiveReservedScheduledRegisteredStatsQueryTask_OfCeleriacWorker_InCelerysShapes()
    {
        string id = Guid.NewGuid().ToString("N")[..8];
        string queue = "rc.net." + id;
        string node = $"celeriac-rc-{id}@localhost";
        await using CeleriacApp client = NewApp(o => o.DefaultQueue = queue);
        await using RunningCeleriacWorker worker = await RunningCeleriacWorker.StartAsync(NewApp, queue, node, concurrency: 2);

        // Two sleeps fill both slots (active), then one task waits for its ETA (scheduled) and an add behind the sleeps
        // (reserved). No slot has read the ETA task's message yet; it shows as scheduled all the same, as in Celery.
        var toNode = new ControlOptions { Destination = [node], Timeout = TimeSpan.FromSeconds(5) };
        AsyncResult sleep1 = await client.SendTaskAsync("tasks.sleep", [20], ct: Ct);
        AsyncResult sleep2 = await client.SendTaskAsync("tasks.sleep", [20], ct: Ct);
        await PollAsync(async () => (await client.Control.Inspect(toNode).ActiveAsync(ct: Ct)).TryGetValue(node, out var a) && a.Count == 2, "both sleeps never showed active");
        DateTimeOffset now = TimeProvider.System.GetUtcNow();
        DateTimeOffset eta = now.AddMinutes(5).AddTicks(-(now.Ticks % TimeSpan.TicksPerSecond));
        AsyncResult later = await client.SendTaskAsync("tasks.add", [3, 4], options: new ApplyOptions { Eta = eta }, ct: Ct);
        AsyncResult waiting = await client.SendTaskAsync("tasks.add", [1, 2], ct: Ct);
        await PollAsync(async () =>
        {
            Inspector inspect = client.Control.Inspect(toNode);
            return (await inspect.ReservedAsync(Ct)).TryGetValue(node, out var r) && r.Count == 1
                && (await inspect.ScheduledAsync(Ct)).TryGetValue(node, out var s) && s.Count == 1;
        }, "the add never showed reserved and the ETA task scheduled");

        try
        {
            // celery inspect active --json: {node: [Request.info(), ...]}.
            using (JsonDocument doc = (await CeleryCli.RunAsync(PythonEnvironment, "inspect", "active", "-d", node, "-t", "5", "--json")).Succeeded().Json())
            {
                List<JsonElement> active = [.. doc.RootElement.GetProperty(node).EnumerateArray()];
                Assert.Equal(new[] { sleep1.Id, sleep2.Id }.Order(StringComparer.Ordinal), active.Select(t => t.GetProperty("id").GetString()!).Order(StringComparer.Ordinal));
                Assert.All(active, t =>
                {
                    Assert.Equal("tasks.sleep", t.GetProperty("name").GetString());
                    Assert.Equal("tasks.sleep", t.GetProperty("type").GetString());
                    Assert.Equal("[20]", JsonText.Canonical(t.GetProperty("args")));
                    Assert.Equal("{}", JsonText.Canonical(t.GetProperty("kwargs")));
                    Assert.Equal(node, t.GetProperty("hostname").GetString());
                    Assert.True(t.GetProperty("acknowledged").GetBoolean());
                    Assert.InRange(t.GetProperty("time_start").GetDouble(), now.AddMinutes(-2).ToUnixTimeSeconds(), now.AddMinutes(2).ToUnixTimeSeconds());
                    Assert.Equal(JsonValueKind.Number, t.GetProperty("worker_pid").ValueKind);
                    Assert.Equal(queue, t.GetProperty("delivery_info").GetProperty("routing_key").GetString());
                });
            }

            // celery inspect query_task <ids> --json: {node: {id: [state, info]}}; an id it does not hold is left out.
            string unknown = Guid.NewGuid().ToString();
            using (JsonDocument doc = (await CeleryCli.RunAsync(PythonEnvironment, "inspect", "query_task", sleep1.Id, waiting.Id, unknown, "-d", node, "-t", "5", "--json")).Succeeded().Json())
            {
                JsonElement found = doc.RootElement.GetProperty(node);
                Assert.Equal("active", found.GetProperty(sleep1.Id)[0].GetString());
                Assert.Equal("tasks.sleep", found.GetProperty(sleep1.Id)[1].GetProperty("name").GetString());
                Assert.Equal("reserved", found.GetProperty(waiting.Id)[0].GetString());
                Assert.Equal("[1,2]", JsonText.Canonical(found.GetProperty(waiting.Id)[1].GetProperty("args")));
                Assert.False(found.TryGetProperty(unknown, out _));
            }

            // Python's app.control.inspect(destination=[node]): reserved, scheduled, registered, stats.
            string output = await PythonCelery.RunAsync("""
                import sys, json
                from interop_tasks import app
                node = sys.argv[1]
                i = app.control.inspect(destination=[node], timeout=10, limit=1)
                print(json.dumps({'reserved': i.reserved(), 'scheduled': i.scheduled(), 'registered': i.registered(),
                                  'stats': i.stats()}))
                """, PythonEnvironment, node);
            using (JsonDocument doc = JsonDocument.Parse(output))
            {
                JsonElement root = doc.RootElement;
                JsonElement reserved = Assert.Single(root.GetProperty("reserved").GetProperty(node).EnumerateArray().ToList());
                Assert.Equal((waiting.Id, "tasks.add", "[1,2]"), (reserved.GetProperty("id").GetString(), reserved.GetProperty("name").GetString(), JsonText.Canonical(reserved.GetProperty("args"))));
                Assert.Equal(JsonValueKind.Null, reserved.GetProperty("time_start").ValueKind);

                JsonElement scheduled = Assert.Single(root.GetProperty("scheduled").GetProperty(node).EnumerateArray().ToList());
                Assert.Equal(eta, DateTimeOffset.Parse(scheduled.GetProperty("eta").GetString()!, CultureInfo.InvariantCulture));
                Assert.Equal(JsonValueKind.Number, scheduled.GetProperty("priority").ValueKind);
                JsonElement request = scheduled.GetProperty("request");
                Assert.Equal((later.Id, "tasks.add", "[3,4]"), (request.GetProperty("id").GetString(), request.GetProperty("name").GetString(), JsonText.Canonical(request.GetProperty("args"))));

                List<string> registered = [.. root.GetProperty("registered").GetProperty(node).EnumerateArray().Select(e => e.GetString()!)];
                Assert.Contains("tasks.add", registered);
                Assert.Contains("tasks.sleep", registered);
                Assert.Contains("tasks.echo", registered);

                JsonElement stats = root.GetProperty("stats").GetProperty(node);
                Assert.Equal(Environment.ProcessId, stats.GetProperty("pid").GetInt32());
                Assert.Equal(2, stats.GetProperty("pool").GetProperty("max-concurrency").GetInt32());
                Assert.Equal(2, stats.GetProperty("total").GetProperty("tasks.sleep").GetInt64());
                Assert.False(stats.GetProperty("total").TryGetProperty("tasks.add", out _), "tasks.add never started yet");
                Assert.True(stats.GetProperty("uptime").GetDouble() >= 0);
                Assert.Equal(JsonValueKind.Object, stats.GetProperty("broker").ValueKind);
            }
        }
        finally
        {
            // The sleeps end at once; the waiting and the ETA tasks are discarded.
            await client.Control.RevokeAsync([sleep1.Id, sleep2.Id, waiting.Id, later.Id], terminate: true, options: new ControlOptions { Destination = [node] }, ct: Ct);
        }

        var revoked = await Assert.ThrowsAsync<TaskFailedException>(() => sleep1.GetAsync<int>(Wait, Ct));
        Assert.Equal(TaskStates.Revoked, revoked.State);
    }

    [Fact]
    public async Task CeleryControlTerminate_StopsLongTaskOnCeleriacWorker_ResultRevoked()
    {
        string id = Guid.NewGuid().ToString("N")[..8];
        string queue = "rc.term." + id;
        string node = $"celeriac-term-{id}@localhost";
        await using RunningCeleriacWorker worker = await RunningCeleriacWorker.StartAsync(NewApp, queue, node, concurrency: 1);

        // A Python client sends a 60 s sleep, waits until the Celeriac worker runs it (inspect active), then Celery's
        // command line terminates it: Celery 5.2's `celery control revoke` takes no --terminate; its
        // `celery control terminate <signal> <id>` is revoke(terminate=True, signal=...).
        string output = await PythonCelery.RunAsync("""
            import sys, json, subprocess, time
            from interop_tasks import app, sleep
            q, node = sys.argv[1], sys.argv[2]
            r = sleep.apply_async((60,), queue=q)
            i = app.control.inspect(destination=[node], timeout=5, limit=1)
            out = {'id': r.id, 'seen_active': False}
            deadline = time.time() + 30
            while time.time() < deadline and not out['seen_active']:
                out['seen_active'] = any(t['id'] == r.id for t in ((i.active() or {}).get(node) or []))
                time.sleep(0.1)
            t0 = time.time()
            cli = subprocess.run([sys.executable, '-m', 'celery', '-A', 'interop_tasks', 'control', 'terminate', 'SIGTERM', r.id,
                                  '-d', node, '-t', '5', '--json'], capture_output=True, text=True, timeout=40)
            out['cli'] = [cli.returncode, cli.stdout, cli.stderr]
            try:
                out['value'] = r.get(timeout=30)
            except Exception as e:
                out['exc'] = [type(e).__name__, str(e)]
            out['elapsed'] = time.time() - t0
            out['state'] = r.state
            out['active_after'] = (i.active() or {}).get(node)
            print(json.dumps(out))
            """, PythonEnvironment, queue, node);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        string taskId = root.GetProperty("id").GetString()!;
        Assert.True(root.GetProperty("seen_active").GetBoolean(), $"the task never showed active: {output}");
        JsonElement cli = root.GetProperty("cli");
        Assert.True(cli[0].GetInt32() == 0, $"celery control terminate failed: {output}");
        using (JsonDocument replies = new CeleryCliResult(0, cli[1].GetString()!, cli[2].GetString()!).Json())
        {
            JsonElement reply = Assert.Single(replies.RootElement.EnumerateArray().ToList());
            Assert.Equal($"terminate: {taskId}", reply.GetProperty(node).GetProperty("ok").GetString());
        }

        Assert.False(root.TryGetProperty("value", out _), $"the terminated task returned: {output}");
        Assert.Equal("TaskRevokedError", root.GetProperty("exc")[0].GetString());
        Assert.Equal("REVOKED", root.GetProperty("state").GetString());
        Assert.InRange(root.GetProperty("elapsed").GetDouble(), 0, 40);
        Assert.Equal("[]", root.GetProperty("active_after").GetRawText());
    }

    [Fact]
    public async Task DotNetRateLimitAndPoolGrow_ReachCeleryWorker_WithCelerysRepliesAndShowInItsInspect()
    {
        string id = Guid.NewGuid().ToString("N")[..8];
        string node = $"py-rc-{id}@localhost";

        // Prefork, one process: Celery's thread pool cannot grow.
        await using PythonWorker python = await StartPythonWorkerAsync("rc.py." + id, node, "prefork", 1);
        await using CeleriacApp client = NewApp();
        var options = new ControlOptions { Destination = [node], Reply = true, Timeout = TimeSpan.FromSeconds(10) };

        // Celery logs "ready." before its event loop has subscribed to the broadcast channel, and on Redis a broadcast
        // published before that is lost (CI saw one): the first command waits until a ping is answered.
        await PollAsync(
            async () => (await client.Control.PingAsync(options with { Timeout = TimeSpan.FromSeconds(1) }, Ct)).ContainsKey(node),
            "the Celery worker never answered a ping");
        ControlReply rate = Assert.Single(await client.Control.RateLimitAsync("tasks.mul", "7/m", options, Ct));
        Assert.Equal((node, "new rate limit set successfully"), (rate.Node, rate.Ok));
        ControlReply grow = Assert.Single(await client.Control.PoolGrowAsync(1, options, Ct));
        Assert.Equal((node, "pool will grow"), (grow.Node, grow.Ok));
        ControlReply unknown = Assert.Single(await client.Control.RateLimitAsync("tasks.nope", "1/s", options, Ct));
        Assert.Equal("unknown task", unknown.Error);

        // The same through the celeriac CLI: celeriac control rate_limit reaches the Celery worker.
        (int exit, string said) = await CeleriacCliAsync(client.Options.BrokerUrl, "control", "rate_limit", "tasks.add", "11/m", "-d", node, "-t", "5");
        Assert.Equal(0, exit);
        Assert.Contains($"->  {node}: OK", said, StringComparison.Ordinal);
        Assert.Contains("new rate limit set successfully", said, StringComparison.Ordinal);

        // celery inspect registered rate_limit: the new limit beside the task's name.
        using (JsonDocument doc = (await CeleryCli.RunAsync(PythonEnvironment, "inspect", "registered", "rate_limit", "-d", node, "-t", "5", "--json")).Succeeded().Json())
        {
            List<string> registered = [.. doc.RootElement.GetProperty(node).EnumerateArray().Select(e => e.GetString()!)];
            Assert.Contains("tasks.mul [rate_limit=7/m]", registered);
            Assert.Contains("tasks.add [rate_limit=11/m]", registered);
        }

        // The pool grew from one process to two: Celeriac's inspector reads it from Celery's stats, and so does celery inspect stats.
        await PollAsync(async () => (await client.Control.Inspect(options).StatsAsync(Ct)).TryGetValue(node, out WorkerStats? s)
            && s.Raw.GetProperty("pool").GetProperty("processes").GetArrayLength() == 2 && s.PrefetchCount == 8, "the Celery worker's pool never grew to two processes");
        using (JsonDocument doc = (await CeleryCli.RunAsync(PythonEnvironment, "inspect", "stats", "-d", node, "-t", "5", "--json")).Succeeded().Json())
        {
            JsonElement stats = doc.RootElement.GetProperty(node);
            Assert.Equal(2, stats.GetProperty("pool").GetProperty("processes").GetArrayLength());
            Assert.Equal(1, stats.GetProperty("pool").GetProperty("max-concurrency").GetInt32());

            // Celery raises its prefetch count by the multiplier (4) for each process it grows by.
            Assert.Equal(8, stats.GetProperty("prefetch_count").GetInt32());
        }
    }

    [Fact]
    public async Task CeleryEventsDump_PrintsCeleriacWorkersHeartbeatsAndTaskEvents()
    {
        string id = Guid.NewGuid().ToString("N")[..8];
        string queue = "rc.ev." + id;
        string node = $"celeriac-ev-{id}@localhost";
        await using CeleriacApp client = NewApp(o => o.DefaultQueue = queue);
        await using RunningCeleriacWorker worker = await RunningCeleriacWorker.StartAsync(NewApp, queue, node, concurrency: 2, taskEvents: true);
        await using CeleryCliProcess dump = await CeleryCliProcess.StartAsync(PythonEnvironment, "-> evdump: starting capture...", Wait, "events", "--dump");

        // Heartbeats: the answer to the request celery events sends as it starts, then one every 2 s.
        await dump.WaitForAsync(l => l.StartsWith(node + " [", StringComparison.Ordinal) && l.Contains("] heartbeat: ", StringComparison.Ordinal), Wait);
        AsyncResult add = await client.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
        Assert.Equal(5, await add.GetAsync<int>(Wait, Ct));

        string received = await dump.WaitForAsync(l => l.Contains($"task received: tasks.add({add.Id}) args=(2, 3) kwargs={{}}", StringComparison.Ordinal), Wait);
        string started = await dump.WaitForAsync(l => l.Contains($"task started: tasks.add({add.Id})", StringComparison.Ordinal), Wait);
        string succeeded = await dump.WaitForAsync(l => l.Contains($"task succeeded: tasks.add({add.Id})", StringComparison.Ordinal), Wait);
        Assert.All([received, started, succeeded], l => Assert.StartsWith(node + " [", l, StringComparison.Ordinal));
        Assert.Contains("result=5", succeeded, StringComparison.Ordinal);
        string beat = await dump.WaitForAsync(l => l.StartsWith(node + " [", StringComparison.Ordinal) && l.Contains("] heartbeat: ", StringComparison.Ordinal) && l.Contains("sw_ident=celeriac", StringComparison.Ordinal), Wait);
        Assert.Contains("freq=2.0", beat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CeleryCursesMonitorUnderTmux_ShowsCeleriacWorkerOnlineAndItsTask()
    {
        Assert.True(File.Exists(Tmux), $"{Tmux} is missing: scripts/provision.sh installs tmux");
        string id = Guid.NewGuid().ToString("N")[..8];
        string queue = "rc.mon." + id;
        string node = $"celeriac-mon-{id}@localhost";
        await using CeleriacApp client = NewApp(o => o.DefaultQueue = queue);
        await using RunningCeleriacWorker worker = await RunningCeleriacWorker.StartAsync(NewApp, queue, node, concurrency: 2, taskEvents: true);

        // `celery events` (the curses monitor) in a detached tmux session on a tmux server of the test's own, wide enough
        // for the "Workers online:" line to name the workers of tests running beside this one too.
        string socket = "celeriac-rc-" + id;
        await TmuxAsync(socket, [
            "new-session", "-d", "-s", "mon", "-x", "600", "-y", "50", "-c", PythonCelery.ModulesDirectory, "env",
            .. PythonEnvironment.Select(kv => $"{kv.Key}={kv.Value}"), "PYTHONPATH=" + PythonCelery.ModulesDirectory,
            PythonCelery.Python, "-m", "celery", "-A", "interop_tasks", "events"]);
        try
        {
            string screen = "";
            await PollAsync(async () =>
            {
                screen = await TmuxAsync(socket, ["capture-pane", "-p", "-t", "mon"]);
                return screen.Split('\n').Any(l => l.Contains("Workers online:", StringComparison.Ordinal) && l.Contains(node, StringComparison.Ordinal));
            }, "the monitor never listed the Celeriac worker online");

            AsyncResult add = await client.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
            Assert.Equal(5, await add.GetAsync<int>(Wait, Ct));

            // Its row: uuid, worker, task name, time, state.
            string? row = null;
            await PollAsync(async () =>
            {
                screen = await TmuxAsync(socket, ["capture-pane", "-p", "-t", "mon"]);
                row = screen.Split('\n').FirstOrDefault(l => l.Contains(add.Id, StringComparison.Ordinal) && l.Contains("SUCCESS", StringComparison.Ordinal));
                return row is not null;
            }, "the monitor never showed the task as SUCCESS");
            Assert.Contains(node, row, StringComparison.Ordinal);
            Assert.Contains("tasks.add", row, StringComparison.Ordinal);
        }
        finally
        {
            // The server ends, and with it the monitor.
            await TmuxAsync(socket, ["kill-server"], check: false);
        }
    }

    private const string Tmux = "/usr/bin/tmux";

    /// <summary>Runs <c>tmux -L socket args...</c> (10 s at most) and returns its stdout; fails the test on a non-zero exit when <paramref name="check"/>.</summary>
    private static async Task<string> TmuxAsync(string socket, string[] args, bool check = true)
    {
        var start = new ProcessStartInfo(Tmux) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])["-L", socket, .. args])
        {
            start.ArgumentList.Add(a);
        }

        using Process tmux = Process.Start(start)!;
        Task<string> stdout = tmux.StandardOutput.ReadToEndAsync();
        Task<string> stderr = tmux.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await tmux.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            tmux.Kill(entireProcessTree: true);
            Assert.Fail($"tmux {string.Join(' ', args)} did not exit within 10 s");
        }

        Assert.True(!check || tmux.ExitCode == 0, $"tmux {string.Join(' ', args)} exited {tmux.ExitCode}: {await stderr}");
        return await stdout;
    }

    /// <summary>Polls <paramref name="condition"/> every 100 ms until it holds; fails the test with <paramref name="what"/> after 30 s.</summary>
    protected static async Task PollAsync(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < Wait, what);
            await Task.Delay(100, Ct);
        }
    }

    /// <summary>An in-process Celeriac worker with the Quickstart's tasks on a queue and node name of the test's own; stopped on dispose.</summary>
    protected sealed class RunningCeleriacWorker : IAsyncDisposable
    {
        private readonly CeleriacApp _app;
        private readonly CancellationTokenSource _stop = new();
        private Task _run = Task.CompletedTask;

        private RunningCeleriacWorker(CeleriacApp app, CapturedLog log) => (_app, Log) = (app, log);

        /// <summary>What it logged (information and above).</summary>
        public CapturedLog Log { get; }

        public static async Task<RunningCeleriacWorker> StartAsync(
            Func<Action<CeleriacOptions>?, CeleriacApp> newApp, string queue, string node, int concurrency, bool taskEvents = false)
        {
            var log = new CapturedLog();
            CeleriacApp app = newApp(o =>
            {
                o.Queues.Add(queue);
                o.NodeName = node;
                o.Concurrency = concurrency;
                o.TrackStarted = true;
                o.TaskEvents = taskEvents;
                o.LoggerFactory = log;
            });
            app.AddTasksFromAssembly(typeof(Quickstart.Tasks).Assembly);
            var running = new RunningCeleriacWorker(app, log);
            var worker = new CeleriacWorker(app);
            running._run = Task.Run(() => worker.RunAsync(running._stop.Token), Ct);
            try
            {
                await Task.WhenAny(worker.Ready, running._run).WaitAsync(Wait, Ct);
                if (running._run.IsCompleted)
                {
                    await running._run;
                    Assert.Fail($"the Celeriac worker {node} stopped before it was ready:\n{log.Text}");
                }
            }
            catch
            {
                await running.DisposeAsync();
                throw;
            }

            return running;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _run.WaitAsync(Wait);
            }
            finally
            {
                _stop.Dispose();
                await _app.DisposeAsync();
            }
        }
    }
}
