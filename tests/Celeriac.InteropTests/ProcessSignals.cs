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
}
