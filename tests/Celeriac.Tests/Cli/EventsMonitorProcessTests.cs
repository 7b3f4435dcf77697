using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Celeriac.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Tests.Cli;

/// <summary>
/// <c>celeriac events</c> as a user sees it: the built CLI in a tmux pane (a real terminal, 200×50) watching a worker
/// process on a shared SQLite broker file while tasks flow, read from the screen.
/// </summary>
public sealed partial class EventsMonitorProcessTests : IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-events-").FullName;
    private readonly string _socket = "celeriac-test-" + Guid.NewGuid().ToString("N")[..12];
    private readonly StringBuilder _workerLog = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string QuickstartDll =>
        typeof(EventsMonitorProcessTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "QuickstartDll").Value!;

    private static string CliDll => Path.Join(AppContext.BaseDirectory, "Celeriac.Cli.dll");

    [Fact]
    public async Task Events_InTmux_ShowsTheWorkerOnline_AndItsProcessedCountGrowsAsTasksRun()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "tmux");
        Assert.SkipUnless(File.Exists("/usr/bin/tmux") || File.Exists("/usr/local/bin/tmux"), "tmux is not installed");
        Assert.True(File.Exists(QuickstartDll), $"build the sample first: {QuickstartDll}");
        Assert.True(File.Exists(CliDll), $"the CLI is not next to the tests: {CliDll}");
        string broker = "sqlite:///" + Path.Join(_directory, "broker.db");
        string node = "tmux" + Guid.NewGuid().ToString("N")[..8] + "@test";
        using Process worker = StartWorker(broker, node, out Task ready);
        try
        {
            await ready.WaitAsync(s_wait, Ct);
            await Tmux("new-session", "-d", "-s", "events", "-x", "200", "-y", "50",
                $"dotnet '{CliDll}' events --freq 0.3 --broker '{broker}'; echo \"EXIT=$?\"; sleep 60");

            // The monitor shows the worker once it listens (it asks for a heartbeat): from then on it sees the tasks.
            (string idle, _) = await ScreenUntilAsync(node, (_, processed) => processed >= 0);
            Assert.Contains(" ONLINE ", WorkerRow(idle, node), StringComparison.Ordinal);

            await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker, LoggerFactory = NullLoggerFactory.Instance });
            for (int i = 0; i < 2; i++)
            {
                Assert.Equal(i + 1, await (await app.SendTaskAsync("tasks.add", [i, 1], ct: Ct)).GetAsync<long>(s_wait, Ct));
            }

            // The worker's heartbeat (every 2 s) carries its processed count.
            (string first, long before) = await ScreenUntilAsync(node, (screen, processed) => processed >= 2 && SucceededRow(screen, "(1, 1)"));
            Assert.Contains(" ONLINE ", WorkerRow(first, node), StringComparison.Ordinal);

            for (int i = 0; i < 3; i++)
            {
                Assert.Equal(10 + i, await (await app.SendTaskAsync("tasks.add", [10, i], ct: Ct)).GetAsync<long>(s_wait, Ct));
            }

            (string second, long after) = await ScreenUntilAsync(node, (screen, processed) => processed >= before + 3 && SucceededRow(screen, "(10, 2)"));
            Assert.True(after >= before + 3, $"processed {before} -> {after}\n{second}");
            Assert.NotEqual(WorkerRow(first, node), WorkerRow(second, node));

            // Down selects the latest task; i shows its result from the backend; r revokes it on the worker.
            await Tmux("send-keys", "-t", "events", "Down");
            (string selecting, _) = await ScreenUntilAsync(node, (screen, _) => SelectedTask(screen) is not null);
            string uuid = SelectedTask(selecting)!;
            await Tmux("send-keys", "-t", "events", "i");
            (string info, _) = await ScreenUntilAsync(node, (screen, _) => screen.Contains($"tasks.add[{uuid}]  SUCCESS", StringComparison.Ordinal));
            Assert.Matches(@"Result: \d+", info);
            await Tmux("send-keys", "-t", "events", "r");
            await ScreenUntilAsync(node, (screen, _) => screen.Contains("Revoked " + uuid, StringComparison.Ordinal));
            IReadOnlyList<string> revoked = [];
            bool held = await Poll.UntilAsync(async () =>
            {
                var inspect = app.Control.Inspect(new Celeriac.Control.ControlOptions { Destination = [node], Timeout = TimeSpan.FromSeconds(10) });
                revoked = (await inspect.RevokedAsync(Ct)).GetValueOrDefault(node) ?? [];
                return revoked.Contains(uuid);
            }, s_wait);
            Assert.True(held, $"the worker's revoked list lacks {uuid}: {string.Join(", ", revoked)}");

            // q ends the monitor with exit code 0.
            await Tmux("send-keys", "-t", "events", "q");
            string end = "";
            bool exited = await Poll.UntilAsync(async () => (end = await Tmux("capture-pane", "-p", "-t", "events")).Contains("EXIT=", StringComparison.Ordinal), s_wait);
            Assert.True(exited, "q did not end the monitor:\n" + end);
            Assert.Contains("EXIT=0", end, StringComparison.Ordinal);
        }
        finally
        {
            if (!worker.HasExited)
            {
                worker.Kill(entireProcessTree: true);
                await worker.WaitForExitAsync(CancellationToken.None);
            }
        }
    }

    [Fact]
    public async Task EventsDump_Sigterm_EndsWithZero()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "POSIX signals");
        Assert.True(File.Exists(CliDll), $"the CLI is not next to the tests: {CliDll}");
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = _directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in (string[])[CliDll, "events", "--dump", "--broker", "sqlite:///" + Path.Join(_directory, "dump.db")])
        {
            start.ArgumentList.Add(arg);
        }

        var capturing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stderr = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data == "-> evdump: starting capture...")
            {
                capturing.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) => { lock (stderr) { stderr.AppendLine(e.Data); } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await capturing.Task.WaitAsync(s_wait, Ct);
            using (Process kill = Process.Start("/bin/kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(Ct);
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(20));
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {stderr}");
    }

    public void Dispose()
    {
        try
        {
            using Process kill = Process.Start(new ProcessStartInfo("tmux", ["-L", _socket, "kill-server"]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            kill.WaitForExit(10_000);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No tmux: nothing was started.
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Reads the pane until the worker's row shows a processed count that satisfies <paramref name="wanted"/>.</summary>
    private async Task<(string Screen, long Processed)> ScreenUntilAsync(string node, Func<string, long, bool> wanted)
    {
        string screen = "";
        long processed = -1;
        bool seen = await Poll.UntilAsync(async () =>
        {
            screen = await Tmux("capture-pane", "-p", "-t", "events");
            processed = Processed(screen, node);
            return processed >= 0 && wanted(screen, processed);
        }, s_wait);
        Assert.True(seen, $"the screen never showed what was wanted (last {processed}):\n{screen}\nworker:\n{WorkerLog}");
        return (screen, processed);
    }

    private string WorkerLog
    {
        get
        {
            lock (_workerLog)
            {
                return _workerLog.ToString();
            }
        }
    }

    /// <summary>The uuid of the selected task row (marked <c>&gt;</c>), or null.</summary>
    private static string? SelectedTask(string screen) =>
        Regex.Match(screen, @"^\s*> ([0-9a-f-]{36}) ", RegexOptions.Multiline) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>Whether the tasks table has a tasks.add row in SUCCESS with these args.</summary>
    private static bool SucceededRow(string screen, string args) =>
        Regex.IsMatch(screen, @"tasks\.add\s+SUCCESS\s+" + Regex.Escape(args));

    private static string WorkerRow(string screen, string node) =>
        screen.Split('\n').Single(l => l.TrimStart().StartsWith(node + " ", StringComparison.Ordinal));

    /// <summary>The processed count in the worker's row (hostname, status, active, processed, ...), or -1.</summary>
    private static long Processed(string screen, string node)
    {
        Match row = WorkerRowPattern().Match(screen);
        while (row.Success)
        {
            if (row.Groups["node"].Value == node)
            {
                return long.Parse(row.Groups["processed"].Value, CultureInfo.InvariantCulture);
            }

            row = row.NextMatch();
        }

        return -1;
    }

    [GeneratedRegex(@"^\s*(?<node>\S+@\S+)\s+(ONLINE|OFFLINE)\s+(\d+|-)\s+(?<processed>\d+)\s", RegexOptions.Multiline)]
    private static partial Regex WorkerRowPattern();

    private async Task<string> Tmux(params string[] args)
    {
        var start = new ProcessStartInfo("tmux")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-L");
        start.ArgumentList.Add(_socket);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // The tmux server takes its environment from the first client: keep the developer's CELERIAC_* out of the CLI.
        foreach (string name in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(n => n.StartsWith("CELERIAC_", StringComparison.Ordinal)))
        {
            start.Environment.Remove(name);
        }

        using Process tmux = Process.Start(start)!;
        Task<string> output = tmux.StandardOutput.ReadToEndAsync(Ct);
        Task<string> error = tmux.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        await tmux.WaitForExitAsync(timeout.Token);
        Assert.True(tmux.ExitCode == 0, $"tmux {string.Join(' ', args)}: exit {tmux.ExitCode}: {await error}");
        return await output;
    }

    private Process StartWorker(string broker, string node, out Task ready)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = _directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in (string[])[QuickstartDll, "worker", "-c", "2", "-E", "-n", node, "--broker", broker, "-l", "info"])
        {
            start.ArgumentList.Add(arg);
        }

        foreach (string name in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(n => n.StartsWith("CELERIAC_", StringComparison.Ordinal)))
        {
            start.Environment.Remove(name);
        }

        StringBuilder text = _workerLog;
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { lock (text) { text.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (text)
            {
                text.AppendLine(e.Data);
            }

            if (e.Data?.EndsWith(" ready.", StringComparison.Ordinal) == true)
            {
                started.TrySetResult();
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        ready = started.Task;
        return process;
    }
}
