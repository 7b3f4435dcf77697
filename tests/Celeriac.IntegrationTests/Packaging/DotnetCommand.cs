using System.Diagnostics;
using System.Text;

namespace Celeriac.IntegrationTests.Packaging;

/// <summary>
/// A command (dotnet, or an installed tool) run as a child process with its output captured, in an environment cleaned of
/// what the test host sets for its own runs (MSBuild's variables, CELERIAC_*) and with build servers off, so that no
/// lingering compiler or MSBuild node outlives the test holding its pipes.
/// </summary>
internal sealed class DotnetCommand : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly List<(string Text, TaskCompletionSource Seen)> _waits = [];

    private DotnetCommand(Process process) => _process = process;

    /// <summary>stdout and stderr so far, interleaved as the lines came.</summary>
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

    /// <summary>The exit code, once exited.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Starts <paramref name="file"/> with <paramref name="args"/> in <paramref name="workDir"/>.</summary>
    public static DotnetCommand Start(string file, string workDir, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (string name in start.Environment.Keys
                     .Where(n => n.StartsWith("CELERIAC_", StringComparison.Ordinal) || n.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)
                                 || n is "VSTEST_HOST_DEBUG" or "DOTNET_HOST_PATH")
                     .ToList())
        {
            start.Environment.Remove(name);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["UseSharedCompilation"] = "false";
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start };
        var command = new DotnetCommand(process);
        process.OutputDataReceived += (_, e) => command.Append(e.Data);
        process.ErrorDataReceived += (_, e) => command.Append(e.Data);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return command;
    }

    /// <summary>Runs a command to its end, within <paramref name="timeout"/>, and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string file, string workDir, IReadOnlyDictionary<string, string>? environment, TimeSpan timeout, params string[] args)
    {
        await using DotnetCommand command = Start(file, workDir, environment, args);
        int code = await command.WaitForExitAsync(timeout);
        return (code, command.Output);
    }

    /// <summary>Completes when a line containing <paramref name="text"/> has been written (or had been).</summary>
    public Task WaitForLineAsync(string text, TimeSpan timeout)
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_output)
        {
            if (_output.ToString().Contains(text, StringComparison.Ordinal))
            {
                return Task.CompletedTask;
            }

            _waits.Add((text, seen));
        }

        return WaitAsync(seen.Task, timeout, $"'{text}'");
    }

    /// <summary>Waits for the process to exit and returns its exit code; a timeout fails with what it printed.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        await WaitAsync(_process.WaitForExitAsync(TestContext.Current.CancellationToken), timeout, "its exit");
        return _process.ExitCode;
    }

    /// <summary>Sends a signal (<c>TERM</c>, <c>INT</c>) with /bin/kill.</summary>
    public async Task SignalAsync(string signal)
    {
        using Process kill = Process.Start("/bin/kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
    }

    private async Task WaitAsync(Task task, TimeSpan timeout, string what)
    {
        try
        {
            await task.WaitAsync(timeout, TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{Path.GetFileName(_process.StartInfo.FileName)} {string.Join(' ', _process.StartInfo.ArgumentList)}: no {what} within {timeout.TotalSeconds:0} s. Output:\n{Output}");
        }
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
            foreach ((string text, TaskCompletionSource seen) in _waits.Where(w => line.Contains(w.Text, StringComparison.Ordinal)).ToList())
            {
                seen.TrySetResult();
                _waits.Remove((text, seen));
            }
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
