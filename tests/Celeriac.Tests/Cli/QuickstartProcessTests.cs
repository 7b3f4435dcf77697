using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace Celeriac.Tests.Cli;

/// <summary>The built Quickstart sample run as a real child process, as a user runs it.</summary>
public sealed class QuickstartProcessTests
{
    private static string QuickstartDll =>
        typeof(QuickstartProcessTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "QuickstartDll").Value!;

    [Fact]
    public async Task Worker_SigtermWhileIdle_WarmShutdownExitsZeroAfterBanner()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "POSIX signals");
        Assert.True(File.Exists(QuickstartDll), $"build the sample first: {QuickstartDll}");
        string workDir = Directory.CreateTempSubdirectory("celeriac-cli-").FullName;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in (string[])[QuickstartDll, "worker", "-c", "2", "--broker", "memory://child", "-l", "info"])
        {
            start.ArgumentList.Add(arg);
        }

        foreach (string name in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(n => n.StartsWith("CELERIAC_", StringComparison.Ordinal)))
        {
            start.Environment.Remove(name);
        }

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { lock (stdout) { stdout.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (stderr)
            {
                stderr.AppendLine(e.Data);
            }

            if (e.Data?.EndsWith(" ready.", StringComparison.Ordinal) == true)
            {
                ready.TrySetResult();
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

            using (Process kill = Process.Start("/bin/kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            Directory.Delete(workDir, recursive: true);
        }

        string output = stdout.ToString();
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{output}\n{stderr}");
        Assert.Contains(".> app:         Quickstart", output, StringComparison.Ordinal);
        Assert.Contains(".> transport:   memory://child", output, StringComparison.Ordinal);
        Assert.Contains("[queues]", output, StringComparison.Ordinal);
        foreach (string task in (string[])["tasks.add", "tasks.echo", "tasks.fail", "tasks.mul", "tasks.sleep", "tasks.xsum"])
        {
            Assert.Contains("  . " + task, output, StringComparison.Ordinal);
        }

        Assert.Contains("worker: Warm shutdown (MainProcess)", stderr.ToString(), StringComparison.Ordinal);
        // INFO, as Celery logs it (celery/apps/worker.py: logger.info('%s ready.')), and shown at the CLI's default WARNING level.
        Assert.Matches(@"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: INFO/MainProcess\] celeriac@\S+ ready\.", stderr.ToString());
    }
}
