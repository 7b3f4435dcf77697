using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Celeriac.Cli;
using Celeriac.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Tests.Cli;

/// <summary>
/// <c>celeriac inspect</c>, <c>control</c>, <c>status</c>, <c>report</c> and <c>events --dump</c> run in-process against
/// a worker on the same memory broker, asserting what a user reads (Celery's layout, JSON, exit codes).
/// </summary>
public sealed class MonitoringCliTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A worker with one slot, its own node name and broker, and a task that waits for the test.</summary>
    private sealed class Rig : IAsyncDisposable
    {
        public required RunningWorker Running { get; init; }

        public required string Broker { get; init; }

        public required TaskCompletionSource Gate { get; init; }

        public string Node => Running.Worker.NodeName;

        public CeleriacApp App => Running.App;

        public static async Task<Rig> StartAsync(Action<CeleriacOptions>? configure = null)
        {
            string broker = CliRun.NewBroker();
            var options = new CeleriacOptions
            {
                BrokerUrl = broker,
                Concurrency = 1,
                NodeName = "mon-" + Guid.NewGuid().ToString("N")[..8] + "@test",
                LoggerFactory = NullLoggerFactory.Instance,
            };
            configure?.Invoke(options);
            var app = new CeleriacApp(options);
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            app.Task("mon.add", (int x, int y) => x + y);
            app.Task("mon.wait", async (string label, CancellationToken ct) =>
            {
                await gate.Task.WaitAsync(ct);
                return label;
            });
            return new Rig { Running = await RunningWorker.StartAsync(app), Broker = broker, Gate = gate };
        }

        /// <summary>Runs the CLI on this rig's broker, sent to its node, waiting up to 10 s for the reply.</summary>
        public Task<CliRun> CliAsync(params string[] args) =>
            CliRun.RunAsync([.. args, "-d", Node, "-t", "10", "--broker", Broker], ct: Ct);

        public async ValueTask DisposeAsync()
        {
            Gate.TrySetResult();
            await Running.DisposeAsync();
        }
    }

    [Fact]
    public async Task Inspect_Ping_PrintsPongUnderTheNodeAndTheCount()
    {
        await using Rig rig = await Rig.StartAsync();

        CliRun run = await rig.CliAsync("inspect", "ping");

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal($"->  {rig.Node}: OK\n        pong\n\n1 node online.\n", run.Out);
        Assert.Equal("", run.Error);
    }

    [Fact]
    public async Task Inspect_Registered_ListsEachTaskAsAStarLine()
    {
        await using Rig rig = await Rig.StartAsync();

        CliRun run = await rig.CliAsync("inspect", "registered");

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal($"->  {rig.Node}: OK\n    * mon.add\n    * mon.wait\n\n1 node online.\n", run.Out);
    }

    [Fact]
    public async Task Inspect_Active_ShowsTheRunningTaskAsCelerysDictRepr_AndEmptyListsSayEmpty()
    {
        await using Rig rig = await Rig.StartAsync();
        AsyncResult running = await rig.App.SendTaskAsync("mon.wait", ["held"], ct: Ct);
        Assert.True(await Poll.UntilAsync(() => rig.Running.Worker.GetRequests(Celeriac.Worker.RequestState.Active).Count == 1, s_wait), "the task never started");

        CliRun active = await rig.CliAsync("inspect", "active");
        CliRun scheduled = await rig.CliAsync("inspect", "scheduled");

        Assert.True(active.ExitCode == 0, active.Error);
        string[] lines = active.Out.Split('\n');
        Assert.Equal($"->  {rig.Node}: OK", lines[0]);
        Assert.StartsWith("    * {", lines[1], StringComparison.Ordinal);
        Assert.Contains($"'id': '{running.Id}'", lines[1], StringComparison.Ordinal);
        Assert.Contains("'name': 'mon.wait'", lines[1], StringComparison.Ordinal);
        Assert.Contains("'args': ['held']", lines[1], StringComparison.Ordinal);
        Assert.Contains("'acknowledged': True", lines[1], StringComparison.Ordinal);
        Assert.Equal($"->  {rig.Node}: OK\n    - empty -\n\n1 node online.\n", scheduled.Out);
        rig.Gate.SetResult();
        Assert.Equal("held", await running.GetAsync<string>(s_wait, Ct));
    }

    [Fact]
    public async Task Inspect_Stats_PrintsSortedIndentedJson_AndJsonFlagPrintsOneObjectByNode()
    {
        await using Rig rig = await Rig.StartAsync();

        CliRun run = await rig.CliAsync("inspect", "stats");
        CliRun json = await rig.CliAsync("inspect", "stats", "--json");

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.StartsWith($"->  {rig.Node}: OK\n    {{\n        \"broker\": {{\n", run.Out, StringComparison.Ordinal);
        Assert.Contains($"\n        \"pid\": {Environment.ProcessId},\n", run.Out, StringComparison.Ordinal);
        Assert.Contains("\n            \"max-concurrency\": 1,\n", run.Out, StringComparison.Ordinal);
        Assert.EndsWith("\n    }\n\n1 node online.\n", run.Out, StringComparison.Ordinal);
        Assert.True(json.ExitCode == 0, json.Error);
        using JsonDocument doc = JsonDocument.Parse(json.Out);
        JsonProperty node = Assert.Single(doc.RootElement.EnumerateObject());
        Assert.Equal(rig.Node, node.Name);
        Assert.Equal(Environment.ProcessId, node.Value.GetProperty("pid").GetInt32());
        Assert.Equal(json.Out.Trim() + "\n", json.Out);
    }

    [Fact]
    public async Task Inspect_PingJson_IsCelerysOneLineDump()
    {
        await using Rig rig = await Rig.StartAsync();

        CliRun run = await rig.CliAsync("inspect", "ping", "-j");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal($"{{\"{rig.Node}\": {{\"ok\": \"pong\"}}}}\n", run.Out);
    }

    [Fact]
    public async Task Control_RateLimit_ReplyIsPrinted_AndTheWorkerReportsTheNewLimit()
    {
        await using Rig rig = await Rig.StartAsync();

        CliRun run = await rig.CliAsync("control", "rate_limit", "mon.add", "5/m");
        CliRun registered = await rig.CliAsync("inspect", "registered", "rate_limit");

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal($"->  {rig.Node}: OK\n        new rate limit set successfully\n", run.Out);
        Assert.Contains("    * mon.add [rate_limit=5/m]\n", registered.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Control_PoolGrow_GrowsTheWorkersPool_AndJsonIsCelerysListOfReplies()
    {
        await using Rig rig = await Rig.StartAsync();
        Assert.Equal(1, rig.Running.Worker.Concurrency);

        CliRun grow = await rig.CliAsync("control", "pool_grow", "2");
        int grown = rig.Running.Worker.Concurrency;
        CliRun json = await rig.CliAsync("control", "pool_shrink", "--json");

        Assert.True(grow.ExitCode == 0, grow.Error);
        Assert.Equal($"->  {rig.Node}: OK\n        pool will grow\n", grow.Out);
        Assert.Equal(3, grown);
        Assert.Equal($"[{{\"{rig.Node}\": {{\"ok\": \"pool will shrink\"}}}}]\n", json.Out);
        Assert.Equal(2, rig.Running.Worker.Concurrency);
    }

    [Fact]
    public async Task Control_ReplyWithError_PrintsErrorAndTheMessage()
    {
        await using Rig rig = await Rig.StartAsync();

        CliRun run = await rig.CliAsync("control", "rate_limit", "mon.nope", "5/s");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal($"->  {rig.Node}: ERROR\n        unknown task\n", run.Out);
    }

    [Fact]
    public async Task Status_OneWorker_PrintsItsLineAndTheCount()
    {
        await using Rig rig = await Rig.StartAsync();

        CliRun run = await rig.CliAsync("status");
        CliRun json = await rig.CliAsync("status", "--json");

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal($"->  {rig.Node}: OK\n\n1 node online.\n", run.Out);
        Assert.Equal($"{{\"{rig.Node}\": {{\"ok\": \"pong\"}}}}\n", json.Out);
    }

    [Theory]
    [InlineData("inspect", "ping")]
    [InlineData("control", "pool_grow")]
    [InlineData("status")]
    public async Task NoWorker_OneLineAndExit69_WithinTheTimeout(params string[] args)
    {
        var clock = Stopwatch.StartNew();

        CliRun run = await CliRun.RunAsync([.. args, "-t", "0.3", "--broker", CliRun.NewBroker()], ct: Ct);

        Assert.Equal(ExitCodes.Unavailable, run.ExitCode);
        Assert.Equal(["Error: No nodes replied within time constraint"], run.ErrorLines);
        Assert.Equal("", run.Out);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Theory]
    [InlineData("inspect", "frobnicate")]
    [InlineData("inspect", "shutdown")]
    [InlineData("inspect", "hello")]
    [InlineData("control", "ping")]
    [InlineData("control", "pool_grow", "many")]
    [InlineData("control", "rate_limit", "a", "b", "c")]
    [InlineData("inspect", "conf", "maybe")]
    [InlineData("inspect", "ping", "-t", "soon")]
    [InlineData("inspect")]
    public async Task BadCommandOrArgument_OneLineAndUsageExit(params string[] args)
    {
        CliRun run = await CliRun.RunAsync([.. args, "--broker", CliRun.NewBroker()], ct: Ct);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Single(run.ErrorLines);
        Assert.StartsWith("Error: ", run.Error, StringComparison.Ordinal);
        Assert.Equal("", run.Out);
    }

    [Fact]
    public async Task Inspect_UnknownCommand_NamesTheChoices()
    {
        CliRun run = await CliRun.RunAsync(["inspect", "pong", "--broker", CliRun.NewBroker()], ct: Ct);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.StartsWith("Error: Invalid value for 'COMMAND': 'pong' is not one of 'ping', 'active',", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("'hello'", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_InspectAndControlListTheirOwnCommands_TheRootDoesNot()
    {
        CliRun inspect = await CliRun.RunAsync(["inspect", "--help"], ct: Ct);
        CliRun control = await CliRun.RunAsync(["control", "--help"], ct: Ct);
        CliRun root = await CliRun.RunAsync(["--help"], ct: Ct);

        Assert.Equal((0, 0, 0), (inspect.ExitCode, control.ExitCode, root.ExitCode));
        Assert.Matches(@"\n  query_task \[id1 \[id2 \[\.\.\. \[idN\]\]\]\] +Query for task information by id\.\n", inspect.Out);
        Assert.DoesNotContain("pool_grow", inspect.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("  hello ", inspect.Out, StringComparison.Ordinal);
        Assert.Matches(@"\n  pool_grow \[N=1\] +Grow pool by n processes/threads\.\n", control.Out);
        Assert.DoesNotContain("Ping worker(s)", control.Out + root.Out, StringComparison.Ordinal);
        Assert.Contains("69 no worker replied", root.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Report_PrintsVersionsAndMasksPasswords()
    {
        CliRun run = await CliRun.RunAsync(["report", "--broker", "memory://guest:s3cret@" + Guid.NewGuid().ToString("N"), "--result-backend", "memory://u:hidden@x"], ct: Ct);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.StartsWith($"software -> celeriac:{CeleriacCli.Version} runtime:.NET ", run.Out, StringComparison.Ordinal);
        Assert.Contains("\nsettings -> transport:memory://guest:**@", run.Out, StringComparison.Ordinal);
        Assert.Contains("results:memory://u:**@x", run.Out, StringComparison.Ordinal);
        Assert.Contains("\nDefaultQueue: 'celery'\n", run.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", run.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("hidden", run.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EventsDump_TaskFromAnEventsWorker_PrintsItsReceivedStartedSucceededLines()
    {
        await using Rig rig = await Rig.StartAsync(o => o.TaskEvents = true);
        var output = new LiveWriter();
        using var error = new StringWriter();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task<int> dump = CeleriacCli.RunAsync(["events", "--dump", "--broker", rig.Broker], null, new StringReader(""), output, error, stop.Token);

        // The receiver asks the workers for a heartbeat once it listens: seeing it means later events are seen too.
        bool listening = await Poll.UntilAsync(() => output.Text.Contains($"{rig.Node} [", StringComparison.Ordinal) && output.Text.Contains("] heartbeat: ", StringComparison.Ordinal), s_wait);
        Assert.True(listening, "no heartbeat dumped: " + output.Text + error);
        AsyncResult sent = await rig.App.SendTaskAsync("mon.add", [2, 3], ct: Ct);
        Assert.Equal(5, await sent.GetAsync<int>(s_wait, Ct));
        bool succeeded = await Poll.UntilAsync(() => output.Text.Contains("] task succeeded: ", StringComparison.Ordinal), s_wait);
        await stop.CancelAsync();
        int code = await dump.WaitAsync(s_wait, Ct);

        Assert.True(succeeded, "no task-succeeded line: " + output.Text + error);
        Assert.Equal(0, code);
        string[] lines = output.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("-> evdump: starting capture...", lines[0]);
        string task = $"mon.add({sent.Id}) args=(2, 3) kwargs={{}}";
        string received = Assert.Single(lines, l => l.Contains("] task received: ", StringComparison.Ordinal));
        string started = Assert.Single(lines, l => l.Contains("] task started: ", StringComparison.Ordinal));
        string done = Assert.Single(lines, l => l.Contains("] task succeeded: ", StringComparison.Ordinal));
        Assert.Matches($@"^{rig.Node.Replace(".", @"\.", StringComparison.Ordinal)} \[\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{{1,6}})?\] task received: ", received);
        Assert.Contains(" task received: " + task + " clock=", received, StringComparison.Ordinal);
        Assert.Contains(" task started: " + task + " clock=", started, StringComparison.Ordinal);
        Assert.Contains(" task succeeded: " + task + " clock=", done, StringComparison.Ordinal);
        Assert.Contains(", result=5, runtime=", done, StringComparison.Ordinal);
        Assert.True(Array.IndexOf(lines, received) < Array.IndexOf(lines, started) && Array.IndexOf(lines, started) < Array.IndexOf(lines, done), output.Text);
    }

    [Fact]
    public async Task Events_LiveViewWithoutATerminal_DrawsTheWorkerAndEndsWithZeroWhenCancelled()
    {
        await using Rig rig = await Rig.StartAsync();
        var output = new LiveWriter();
        using var error = new StringWriter();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task<int> view = CeleriacCli.RunAsync(["events", "--freq", "0.1", "--broker", rig.Broker], null, new StringReader("q\n"), output, error, stop.Token);

        // stdin is no terminal here (and its "q" is not read as a key): the view only draws, until cancelled.
        bool drawn = await Poll.UntilAsync(() => output.Text.Contains("ONLINE", StringComparison.Ordinal), s_wait);
        Assert.False(view.IsCompleted, "the view ended by itself: " + output.Text + error);
        await stop.CancelAsync();
        int code = await view.WaitAsync(s_wait, Ct);

        Assert.True(drawn, "the worker never showed: " + output.Text + error);
        Assert.Contains("celeriac events", output.Text, StringComparison.Ordinal);
        Assert.Contains("Workers", output.Text, StringComparison.Ordinal);
        Assert.Equal(0, code);
        Assert.Equal("", error.ToString());
    }

    /// <summary>A stdout the test can read while the command still writes to it.</summary>
    private sealed class LiveWriter : TextWriter
    {
        private readonly StringBuilder _text = new();

        public override Encoding Encoding => Encoding.UTF8;

        public string Text
        {
            get
            {
                lock (_text)
                {
                    return _text.ToString();
                }
            }
        }

        public override void Write(char value)
        {
            lock (_text)
            {
                _text.Append(value);
            }
        }

        public override void Write(string? value)
        {
            lock (_text)
            {
                _text.Append(value);
            }
        }

        public override void Write(char[] buffer, int index, int count)
        {
            lock (_text)
            {
                _text.Append(buffer, index, count);
            }
        }
    }
}
