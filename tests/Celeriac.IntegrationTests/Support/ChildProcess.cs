using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace Celeriac.IntegrationTests.Support;

/// <summary>
/// A Celeriac program (the built Quickstart, which is also the CLI) run as a real child process in a
/// working directory, with its output captured. Disposing kills it if it still runs.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process) => _process = process;

    /// <summary>The built Quickstart sample.</summary>
    public static string QuickstartDll =>
        typeof(ChildProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "QuickstartDll").Value!;

    /// <summary>The test tasks library, for <c>-A</c>.</summary>
    public static string TestTasksDll => typeof(Celeriac.TestTasks.RecordingTasks).Assembly.Location;

    /// <summary>The process id.</summary>
    public int Id => _process.Id;

    /// <summary>Whether the process has ended.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Everything written to stdout so far.</summary>
    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    /// <summary>Everything written to stderr so far.</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Completes when a worker logs that it is ready.</summary>
    public Task Ready => _ready.Task;

    /// <summary>Starts <c>dotnet Quickstart.dll args...</c> with no inherited CELERIAC_* settings but <paramref name="environment"/>.</summary>
    public static ChildProcess Start(string workDir, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(QuickstartDll);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (string name in start.Environment.Keys.Where(n => n.StartsWith("CELERIAC_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(name);
        }

        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start };
        var child = new ChildProcess(process);
        process.OutputDataReceived += (_, e) => child.Append(child._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => child.Append(child._stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    private void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (sb)
        {
            sb.AppendLine(line);
        }

        if (line.EndsWith(" ready.", StringComparison.Ordinal))
        {
            _ready.TrySetResult();
        }
    }

    /// <summary>
    /// Waits (up to 30 s) until <paramref name="result"/> is STARTED on <paramref name="worker"/>, then kills the worker
    /// with SIGKILL, and returns the node name the STARTED state named.
    /// </summary>
    public static async Task<string> KillOnceStartedAsync(ChildProcess worker, AsyncResult result)
    {
        using var started = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        started.CancelAfter(TimeSpan.FromSeconds(30));
        while (await result.GetStateAsync(started.Token) != TaskStates.Started)
        {
            await Task.Delay(50, started.Token);
        }

        string node = result.Meta!.ResultElement.GetProperty("hostname").GetString()!;
        await worker.SignalAsync("KILL");
        Assert.Equal(137, await worker.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        return node;
    }

    /// <summary>Sends a signal (<c>TERM</c>, <c>KILL</c>, <c>INT</c>) with /bin/kill.</summary>
    public async Task SignalAsync(string signal)
    {
        using Process kill = Process.Start("/bin/kill", ["-" + signal, _process.Id.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    /// <summary>Waits for the process to exit and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>Runs a CLI command to completion and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string workDir, IReadOnlyDictionary<string, string>? environment, TimeSpan timeout, params string[] args)
    {
        await using ChildProcess child = Start(workDir, environment, args);
        int code = await child.WaitForExitAsync(timeout);
        return (code, child.Stdout.Trim(), child.Stderr.Trim());
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
