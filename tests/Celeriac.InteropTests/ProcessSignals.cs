using System.Diagnostics;
using System.Globalization;

namespace Celeriac.InteropTests;

/// <summary>Signals to worker processes: .NET's <see cref="Process.Kill()"/> only sends SIGKILL.</summary>
internal static class ProcessSignals
{
    /// <summary>Sends SIGTERM (a warm shutdown, for Celery and Celeriac workers alike) with /bin/kill.</summary>
    public static async Task TerminateAsync(int pid)
    {
        using Process kill = Process.Start("/bin/kill", ["-TERM", pid.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    /// <summary>
    /// Warm shutdown of a worker process: SIGTERM, then its exit code once it has exited, or a
    /// <see cref="TimeoutException"/> with its log (<paramref name="log"/>) when it does not within <paramref name="timeout"/>.
    /// </summary>
    public static async Task<int> StopAsync(Process process, TimeSpan timeout, string what, Func<string> log)
    {
        await TerminateAsync(process.Id);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the {what} did not stop within {timeout.TotalSeconds} s of SIGTERM:\n{log()}");
        }

        return process.ExitCode;
    }

    /// <summary>Kills a process that still runs, with all it started, and waits (10 s at most) until it has gone.</summary>
    public static async Task KillAsync(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(timeout.Token);
        }
    }
}
