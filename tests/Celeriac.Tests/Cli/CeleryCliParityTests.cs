using System.Diagnostics;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Tests.Cli;

/// <summary>
/// <c>celeriac inspect|control|status</c> print what Python's <c>celery</c> prints, byte for byte, when both ask the same
/// Celeriac worker on Redis (Debian's python3-celery at <c>/usr/bin/python3</c>; skipped without it).
/// </summary>
public sealed class CeleryCliParityTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private const string Python = "/usr/bin/python3";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SameWorker_CeleryAndCeleriac_PrintTheSameOutputAndExitCodes()
    {
        Assert.SkipUnless(await HasCeleryAsync(), "python3-celery is not installed");
        string broker = redis.Server.Url(0);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var options = new CeleriacOptions
        {
            BrokerUrl = broker,
            Concurrency = 1,
            NodeName = "parity-" + Guid.NewGuid().ToString("N")[..8] + "@test",
            LoggerFactory = NullLoggerFactory.Instance,
        };
        var app = new CeleriacApp(options);
        app.Task("par.add", (int x, int y) => x + y);
        app.Task("par.wait", async (string label, CancellationToken ct) =>
        {
            await gate.Task.WaitAsync(ct);
            return label;
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        AsyncResult held = await app.SendTaskAsync("par.wait", ["held"], ct: Ct);
        Assert.True(await Poll.UntilAsync(() => worker.Worker.GetRequests(Celeriac.Worker.RequestState.Active).Count == 1, TimeSpan.FromSeconds(30)), "the task never started");
        string node = worker.Worker.NodeName;

        string[][] commands =
        [
            ["inspect", "ping"],
            ["inspect", "registered"],
            ["inspect", "active"],
            ["inspect", "scheduled"],
            ["inspect", "conf"],
            ["inspect", "active_queues"],
            ["inspect", "query_task", held.Id],
            ["control", "rate_limit", "par.add", "7/s"],
            ["inspect", "registered", "rate_limit"],
            ["control", "rate_limit", "par.nope", "7/s"],
            ["control", "pool_grow", "1"],
            ["control", "pool_shrink", "1", "--json"],
            ["inspect", "ping", "--json"],
            ["status"],
        ];
        foreach (string[] command in commands)
        {
            string[] args = [.. command, "-d", node, "-t", "10"];
            (int pyCode, string pyOut, string pyErr) = await CeleryAsync(broker, args);
            CliRun ours = await CliRun.RunAsync([.. args, "--broker", broker], ct: Ct);

            string said = string.Join(' ', command);
            Assert.True(pyCode == 0, $"celery {said}: exit {pyCode}: {pyErr}");
            Assert.True(pyOut == ours.Out, $"celery {said}:\n{pyOut}\nceleriac {said}:\n{ours.Out}{ours.Error}");
            Assert.Equal(pyCode, ours.ExitCode);
        }

        (int noneCode, _, string noneErr) = await CeleryAsync(broker, ["inspect", "ping", "-d", "nobody@nowhere", "-t", "0.3"]);
        CliRun none = await CliRun.RunAsync(["inspect", "ping", "-d", "nobody@nowhere", "-t", "0.3", "--broker", broker], ct: Ct);
        Assert.Equal((69, noneErr.Trim()), (none.ExitCode, none.Error.Trim()));
        Assert.Equal(69, noneCode);

        gate.SetResult();
        Assert.Equal("held", await held.GetAsync<string>(TimeSpan.FromSeconds(30), Ct));
    }

    private static async Task<bool> HasCeleryAsync() =>
        File.Exists(Python) && (await RunAsync(Python, ["-c", "import celery, redis"])).Code == 0;

    private static Task<(int Code, string Out, string Error)> CeleryAsync(string broker, string[] args) =>
        RunAsync(Python, ["-m", "celery", "-b", broker, "--no-color", .. args]);

    private static async Task<(int Code, string Out, string Error)> RunAsync(string file, string[] args)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["PYTHONIOENCODING"] = "utf-8";
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(Ct);
        Task<string> stderr = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)} did not exit within 60 s");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
