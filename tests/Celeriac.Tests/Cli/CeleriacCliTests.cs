using Celeriac.Cli;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Tests.Cli;

public sealed class CeleriacCliTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>An app with the Quickstart sample's tasks, logging nowhere, on its own memory broker.</summary>
    private static CeleriacApp NewWorkerApp(string broker)
    {
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker, LoggerFactory = NullLoggerFactory.Instance });
        app.AddTasksFromAssembly(typeof(Quickstart.Tasks).Assembly);
        return app;
    }

    /// <summary>Runs `worker` in-process until the returned handle is disposed (a warm shutdown through the token).</summary>
    private sealed class RunningWorker : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly CeleriacApp _app;

        public RunningWorker(string broker, params string[] extra)
            : this(broker, null, extra)
        {
        }

        public RunningWorker(string broker, Action<CeleriacOptions>? code, params string[] extra)
        {
            _app = NewWorkerApp(broker);
            code?.Invoke(_app.Options);
            Run = CliRun.RunAsync(["worker", "-c", "2", "--broker", broker, .. extra], _app, ct: _stop.Token);
        }

        public Task<CliRun> Run { get; }

        public CeleriacOptions Options => _app.Options;

        public async Task<CliRun> StopAsync()
        {
            await _stop.CancelAsync();
            return await Run.WaitAsync(TimeSpan.FromSeconds(20));
        }

        public async ValueTask DisposeAsync()
        {
            if (!Run.IsCompleted)
            {
                await StopAsync();
            }

            _stop.Dispose();
            await _app.DisposeAsync();
        }
    }

    private static async Task<string> CallAsync(string broker, string task, string argsJson)
    {
        CliRun call = await CliRun.RunAsync(["call", task, "--args", argsJson, "--broker", broker], ct: Ct);
        Assert.True(call.ExitCode == 0, call.Error);
        return call.Out.Trim();
    }

    [Fact]
    public async Task Call_ValidArgs_PrintsOnlyTheTaskId()
    {
        CliRun run = await CliRun.RunAsync(["call", "tasks.add", "--args", "[2, 3]", "--broker", CliRun.NewBroker()], ct: Ct);

        Assert.Equal(0, run.ExitCode);
        Assert.True(Guid.TryParse(run.Out.Trim(), out _), run.Out);
        Assert.Equal(run.Out.Trim() + Environment.NewLine, run.Out);
        Assert.Equal("", run.Error);
    }

    [Fact]
    public async Task Result_AfterWorkerRanAdd_PrintsFive()
    {
        string broker = CliRun.NewBroker();
        await using var worker = new RunningWorker(broker);
        string id = await CallAsync(broker, "tasks.add", "[2, 3]");

        CliRun result = await CliRun.RunAsync(["result", id, "--wait", "10", "--broker", broker], ct: Ct);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("5", result.Out.Trim());
        CliRun stopped = await worker.StopAsync();
        Assert.Equal(0, stopped.ExitCode);
        Assert.Contains("[tasks]", stopped.Out, StringComparison.Ordinal);
        Assert.Contains("  . tasks.add", stopped.Out, StringComparison.Ordinal);
        Assert.Contains($".> transport:   {broker}", stopped.Out, StringComparison.Ordinal);
        Assert.Contains("worker: Warm shutdown (MainProcess)", stopped.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_AckAndPrefetchFlags_ReachTheWorkersOptions_AndItRunsTasks()
    {
        string broker = CliRun.NewBroker();
        string stateDb = Path.Join(Path.GetTempPath(), "celeriac-cli-" + Guid.NewGuid().ToString("N") + ".state");
        await using var worker = new RunningWorker(broker, "--disable-prefetch", "--acks-late", "--statedb", stateDb);
        string id = await CallAsync(broker, "tasks.add", "[2, 3]");

        CliRun result = await CliRun.RunAsync(["result", id, "--wait", "10", "--broker", broker], ct: Ct);

        Assert.Equal("5", result.Out.Trim());
        Assert.Equal((true, true, stateDb), (worker.Options.DisablePrefetch, worker.Options.AcksLate, worker.Options.StateDb));
        CliRun stopped = await worker.StopAsync();
        Assert.Equal(0, stopped.ExitCode);
        Assert.True(File.Exists(stateDb), "the state file is written at shutdown");
        File.Delete(stateDb);
    }

    [Fact]
    public async Task Worker_PoolAutoscaleAndSoftShutdownFlags_ReachTheWorkersOptions_AndTheBannerNamesThePool()
    {
        string broker = CliRun.NewBroker();
        await using var worker = new RunningWorker(broker, "-P", "threads", "--autoscale", "4,2", "--soft-shutdown-timeout", "3");
        string id = await CallAsync(broker, "tasks.add", "[2, 3]");

        CliRun result = await CliRun.RunAsync(["result", id, "--wait", "10", "--broker", broker], ct: Ct);

        Assert.Equal("5", result.Out.Trim());
        Assert.Equal(("threads", "4,2", TimeSpan.FromSeconds(3)), (worker.Options.Pool, worker.Options.Autoscale, worker.Options.SoftShutdownTimeout));
        CliRun stopped = await worker.StopAsync();
        Assert.Equal(0, stopped.ExitCode);
        Assert.Contains(".> concurrency: 2 (threads)", stopped.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[123456789012345678901234567890]", "123456789012345678901234567890")]
    [InlineData("[3.0]", "3.0")]
    [InlineData("[2.5]", "2.5")]
    [InlineData("[{\"a\": [1, null, true]}]", "{\"a\":[1,null,true]}")]
    public async Task Result_EchoThroughCall_KeepsJsonTypes(string args, string expected)
    {
        string broker = CliRun.NewBroker();
        await using var worker = new RunningWorker(broker);
        string id = await CallAsync(broker, "tasks.echo", args);

        CliRun result = await CliRun.RunAsync(["result", id, "--wait", "10", "--broker", broker], ct: Ct);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(expected, result.Out.Trim());
    }

    [Theory]
    [InlineData("[[1, 2, 3]]", "6")]
    [InlineData("[[1, 2.5]]", "3.5")]
    [InlineData("[[1.0, 2.0]]", "3.0")]
    [InlineData("[[9223372036854775807, 1]]", "9223372036854775808")]
    [InlineData("[[]]", "0")]
    public async Task Result_XSum_IntegersStayIntegers(string args, string expected)
    {
        string broker = CliRun.NewBroker();
        await using var worker = new RunningWorker(broker);
        string id = await CallAsync(broker, "tasks.xsum", args);

        CliRun result = await CliRun.RunAsync(["result", id, "--wait", "10", "--broker", broker], ct: Ct);

        Assert.Equal(expected, result.Out.Trim());
    }

    [Fact]
    public async Task Result_TaskFailed_ExitsOneWithTypeAndMessage()
    {
        string broker = CliRun.NewBroker();
        await using var worker = new RunningWorker(broker);
        string id = await CallAsync(broker, "tasks.fail", "[\"the disk is on fire\"]");

        CliRun result = await CliRun.RunAsync(["result", id, "--wait", "10", "--broker", broker], ct: Ct);

        Assert.Equal(ExitCodes.Failure, result.ExitCode);
        Assert.Equal("", result.Out);
        Assert.Equal(["FAILURE: InvalidOperationException: the disk is on fire"], result.ErrorLines);
    }

    [Fact]
    public async Task Result_NoWorker_PrintsPendingAndExitsThree()
    {
        CliRun result = await CliRun.RunAsync(["result", Guid.NewGuid().ToString(), "--broker", CliRun.NewBroker()], ct: Ct);

        Assert.Equal(ExitCodes.NotReady, result.ExitCode);
        Assert.Equal("PENDING", result.Out.Trim());
    }

    [Fact]
    public async Task Result_WaitTimesOut_OneLineAndExitsThree()
    {
        CliRun result = await CliRun.RunAsync(["result", Guid.NewGuid().ToString(), "--wait", "0.2", "--broker", CliRun.NewBroker()], ct: Ct);

        Assert.Equal(ExitCodes.NotReady, result.ExitCode);
        Assert.Single(result.ErrorLines);
    }

    [Theory]
    [InlineData("call", "tasks.add", "--broker", "not a url")]
    [InlineData("call", "tasks.add", "--broker", "nosuchscheme://x")]
    [InlineData("call", "tasks.add", "--args", "[2,", "--broker", "memory://bad-json")]
    [InlineData("call", "tasks.add", "--args", "{\"x\": 1}", "--broker", "memory://bad-json")]
    [InlineData("call", "tasks.add", "--kwargs", "[1, 2]", "--broker", "memory://bad-json")]
    [InlineData("call", "tasks.add", "--countdown", "soon", "--broker", "memory://bad-json")]
    [InlineData("call", "tasks.add", "--eta", "tomorrow", "--broker", "memory://bad-json")]
    [InlineData("frobnicate")]
    [InlineData("worker", "--frobnicate")]
    [InlineData("worker", "-c", "many")]
    [InlineData("worker", "-l", "loud")]
    [InlineData("worker", "-c", "0", "--broker", "memory://bad-worker")]
    [InlineData("worker", "-A", "/no/such/dir/Tasks.dll", "--broker", "memory://bad-worker")]
    [InlineData("worker", "-A", "No.Such.Assembly", "--broker", "memory://bad-worker")]
    [InlineData("worker", "--broker", "nope")]
    [InlineData("worker", "-P", "gevnet", "--broker", "memory://bad-worker")]
    [InlineData("worker", "--autoscale", "2,8", "--broker", "memory://bad-worker")]
    [InlineData("worker", "--autoscale", "many", "--broker", "memory://bad-worker")]
    [InlineData("worker", "--soft-shutdown-timeout", "-1", "--broker", "memory://bad-worker")]
    [InlineData("worker", "--max-tasks-per-child", "0", "--broker", "memory://bad-worker")]
    [InlineData("result")]
    [InlineData()]
    public async Task RunAsync_BadInput_OneLineOnStderrAndExitsTwo(params string[] args)
    {
        CliRun run = await CliRun.RunAsync(args, ct: Ct);

        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Single(run.ErrorLines);
        Assert.StartsWith("Error: ", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Error, StringComparison.Ordinal);
        Assert.Equal("", run.Out);
    }

    [Fact]
    public async Task RunAsync_Version_PrintsInformationalVersion()
    {
        CliRun run = await CliRun.RunAsync(["--version"], ct: Ct);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(CeleriacCli.Version, run.Out.Trim());
        Assert.StartsWith("0.", run.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_Help_DocumentsExitCodes()
    {
        CliRun run = await CliRun.RunAsync(["result", "--help"], ct: Ct);

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("3 not ready", run.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Purge_Force_PrintsCount()
    {
        string broker = CliRun.NewBroker();
        for (int i = 0; i < 3; i++)
        {
            await CallAsync(broker, "tasks.add", "[1, 1]");
        }

        await CallAsync(broker, "tasks.add", "[1, 1]"); // and one on another queue, left alone
        CliRun other = await CliRun.RunAsync(["call", "tasks.add", "--queue", "other", "--broker", broker], ct: Ct);
        Assert.Equal(0, other.ExitCode);

        CliRun purge = await CliRun.RunAsync(["purge", "-f", "--broker", broker], ct: Ct);
        CliRun again = await CliRun.RunAsync(["purge", "-f", "-Q", "celery,other", "--broker", broker], ct: Ct);

        Assert.Equal(0, purge.ExitCode);
        Assert.Equal("Purged 4 messages from 1 queue", purge.Out.Trim());
        Assert.Equal("Purged 1 message from 2 queues", again.Out.Trim());
    }

    [Fact]
    public async Task Purge_NotConfirmed_AbortsAndKeepsMessages()
    {
        string broker = CliRun.NewBroker();
        await CallAsync(broker, "tasks.add", "[1, 1]");

        CliRun purge = await CliRun.RunAsync(["purge", "--broker", broker], stdin: "n\n", ct: Ct);
        CliRun forced = await CliRun.RunAsync(["purge", "-f", "--broker", broker], ct: Ct);

        Assert.Equal(ExitCodes.Failure, purge.ExitCode);
        Assert.Contains("Are you sure", purge.Out, StringComparison.Ordinal);
        Assert.Equal("Purged 1 message from 1 queue", forced.Out.Trim());
    }

    [Fact]
    public async Task Worker_HostAppAndFlags_FlagsWinOverCode()
    {
        string broker = CliRun.NewBroker();
        await using var worker = new RunningWorker(broker, o =>
        {
            o.Concurrency = 7;
            o.BrokerUrl = "memory://overridden-by-flag";
            o.Queues.Add("from-code");
        }, "-Q", "a,b", "-Q", "c", "-n", "node1@%h");
        await Task.Delay(200, Ct);
        CliRun stopped = await worker.StopAsync();

        Assert.Equal(0, stopped.ExitCode);
        Assert.Contains(".> concurrency: 2 (async)", stopped.Out, StringComparison.Ordinal);
        Assert.Contains($".> transport:   {broker}", stopped.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("from-code", stopped.Out, StringComparison.Ordinal);
        Assert.Contains(".> a                exchange=a(direct) key=a", stopped.Out, StringComparison.Ordinal);
        Assert.Contains(".> c ", stopped.Out, StringComparison.Ordinal);
        Assert.Contains(" node1@" + System.Net.Dns.GetHostName() + " v", stopped.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_BrokerUrlWithPassword_BannerMasksIt()
    {
        string broker = "memory://guest:s3cret@" + Guid.NewGuid().ToString("N");
        await using var worker = new RunningWorker(broker);
        await Task.Delay(100, Ct);
        CliRun stopped = await worker.StopAsync();

        Assert.Equal(0, stopped.ExitCode);
        Assert.DoesNotContain("s3cret", stopped.Out + stopped.Error, StringComparison.Ordinal);
        Assert.Contains(".> transport:   memory://guest:**@", stopped.Out, StringComparison.Ordinal);
        Assert.Contains(".> results:     memory://guest:**@", stopped.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_AppAssemblyByPath_RegistersItsTasks()
    {
        string dll = System.Reflection.CustomAttributeExtensions.GetCustomAttributes<System.Reflection.AssemblyMetadataAttribute>(typeof(CeleriacCliTests).Assembly).Single(a => a.Key == "QuickstartDll").Value!;
        string broker = CliRun.NewBroker();
        using var stop = new CancellationTokenSource();
        Task<CliRun> run = CliRun.RunAsync(["worker", "-A", dll, "-c", "1", "-l", "error", "--broker", broker], ct: stop.Token);
        string id = await CallAsync(broker, "tasks.mul", "[6, 7]");
        CliRun result = await CliRun.RunAsync(["result", id, "--wait", "10", "--broker", broker], ct: Ct);
        await stop.CancelAsync();
        CliRun stopped = await run.WaitAsync(TimeSpan.FromSeconds(20), Ct);

        Assert.Equal("42", result.Out.Trim());
        Assert.Equal(0, stopped.ExitCode);
        Assert.Contains(".> app:         Quickstart", stopped.Out, StringComparison.Ordinal);
        Assert.Contains("  . tasks.xsum", stopped.Out, StringComparison.Ordinal);
    }
}
