using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Celeriac.TestServers;

/// <summary>
/// The process side of a test server (redis-server, a RabbitMQ node): started with its output captured, waited for
/// until it answers, stopped with SIGTERM or killed; and its command-line tools run with a time limit.
/// </summary>
internal sealed class ServerProcess(string name) : IDisposable
{
    private readonly StringBuilder _log = new();
    private Process? _process;

    /// <summary>Whether the process runs.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>What the process printed, both streams.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>
    /// Starts the process and polls <paramref name="answers"/> every <paramref name="poll"/> until it is true; throws
    /// with the log if the process exits first or <paramref name="timeout"/> passes (then it is killed).
    /// </summary>
    public async Task StartAsync(ProcessStartInfo start, Func<CancellationToken, Task<bool>> answers, TimeSpan timeout, TimeSpan poll, CancellationToken ct)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        Process process = Process.Start(start) ?? throw new InvalidOperationException($"{name} did not start");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process?.Dispose();
        _process = process;

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{name} exited with {process.ExitCode}:\n{Log}");
            }

            if (await answers(ct).ConfigureAwait(false))
            {
                return;
            }

            if (deadline.Elapsed > timeout)
            {
                Kill();
                throw new TimeoutException($"{name} did not answer within {timeout.TotalSeconds} s:\n{Log}");
            }

            await Task.Delay(poll, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Sends <paramref name="signal"/> (SIGTERM) and waits for the exit; kills it and throws if it has not exited within <paramref name="timeout"/>.</summary>
    public async Task StopAsync(TimeSpan timeout, string signal = "-TERM")
    {
        if (_process is not { } process || process.HasExited)
        {
            return;
        }

        using (Process? kill = Process.Start("/bin/kill", [signal, process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            kill?.WaitForExit(10_000);
        }

        using var wait = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"{name} did not stop within {timeout.TotalSeconds} s of SIGTERM (killed):\n{Log}");
        }
    }

    /// <summary>Kills the process at once (SIGKILL).</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            process.WaitForExit(10_000);
        }
    }

    /// <summary>Runs a tool to its end (killed after <paramref name="timeout"/>) and returns its stdout; throws with stderr on a non-zero exit.</summary>
    public static async Task<string> RunToolAsync(ProcessStartInfo start, IReadOnlyList<string> args, TimeSpan timeout)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        string what = Path.GetFileName(start.FileName) + " " + string.Join(' ', args);
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"{what} did not start");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var wait = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{what} did not finish within {timeout.TotalSeconds} s");
        }

        return process.ExitCode == 0
            ? await stdout.ConfigureAwait(false)
            : throw new InvalidOperationException($"{what} exited {process.ExitCode}: {await stderr.ConfigureAwait(false)}{await stdout.ConfigureAwait(false)}");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Kill();
        _process?.Dispose();
        _process = null;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }
}
