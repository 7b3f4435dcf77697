using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace Celeriac.BrowserTests.Support;

/// <summary>
/// A Celeriac worker as a real child process (the built Quickstart, which is also the CLI, with the test tasks
/// library), so that a test can kill it with SIGKILL as a crash or the OOM killer would. Disposing kills it if it
/// still runs.
/// </summary>
public sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private WorkerProcess(Process process) => _process = process;

    private static string QuickstartDll =>
        typeof(WorkerProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "QuickstartDll").Value!;

    /// <summary>Everything the worker printed.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts <c>worker -E</c> on <paramref name="brokerUrl"/> with node name <paramref name="nodeName"/> and waits until it is ready.</summary>
    public static async Task<WorkerProcess> StartAsync(string brokerUrl, string nodeName, string workDir)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[]
        {
            QuickstartDll, "worker", "-A", typeof(Celeriac.TestTasks.RecordingTasks).Assembly.Location, "-E", "-c", "1",
            "-n", nodeName, "--heartbeat-interval", "1", "-l", "info",
        })
        {
            start.ArgumentList.Add(arg);
        }

        foreach (string name in start.Environment.Keys.Where(n => n.StartsWith("CELERIAC_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(name);
        }

        start.Environment["CELERIAC_BROKER_URL"] = brokerUrl;
        start.Environment["CELERIAC_RESULT_BACKEND"] = brokerUrl;
        var process = new Process { StartInfo = start };
        var worker = new WorkerProcess(process);
        process.OutputDataReceived += (_, e) => worker.Append(e.Data);
        process.ErrorDataReceived += (_, e) => worker.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await worker._ready.Task.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            await worker.DisposeAsync();
            Assert.Fail("the worker process did not get ready:\n" + worker.Output);
        }

        return worker;
    }

    /// <summary>Kills the worker with SIGKILL (no worker-offline event can leave it) and waits for it to end.</summary>
    public async Task KillHardAsync()
    {
        using (Process kill = Process.Start("/bin/kill", ["-KILL", _process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _process.WaitForExitAsync(cts.Token);
        Assert.Equal(137, _process.ExitCode);
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (line.EndsWith(" ready.", StringComparison.Ordinal))
        {
            _ready.TrySetResult();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
