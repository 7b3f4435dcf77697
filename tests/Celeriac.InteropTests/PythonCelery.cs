using System.Diagnostics;

namespace Celeriac.InteropTests;

/// <summary>Runs a Python snippet with Debian's Celery (<c>/usr/bin/python3</c>, package python3-celery).</summary>
internal static class PythonCelery
{
    public const string Python = "/usr/bin/python3";

    /// <summary>Runs <paramref name="script"/> with <paramref name="args"/> and returns its stdout; fails the test on a non-zero exit.</summary>
    public static async Task<string> RunAsync(string script, params string[] args)
    {
        Assert.True(File.Exists(Python), $"{Python} is missing: scripts/provision.sh installs python3-celery");
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"python exited {process.ExitCode}:\n{await stderr}");
        return await stdout;
    }
}
