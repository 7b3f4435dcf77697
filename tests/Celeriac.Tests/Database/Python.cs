using System.Diagnostics;

namespace Celeriac.Tests.Database;

/// <summary>Runs Debian's Python (<c>/usr/bin/python3</c>, which has python3-celery) on a script, for the pickle tests.</summary>
internal static class Python
{
    public const string Path = "/usr/bin/python3";

    public static bool Available => File.Exists(Path);

    /// <summary>Runs <paramref name="script"/> with <paramref name="stdin"/> and returns its output; throws on a non-zero exit.</summary>
    public static async Task<string> RunAsync(string script, string stdin = "", CancellationToken ct = default)
    {
        var start = new ProcessStartInfo(Path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync(ct);
        Task<string> error = process.StandardError.ReadToEndAsync(ct);
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var within = CancellationTokenSource.CreateLinkedTokenSource(ct);
        within.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(within.Token);
        string stdout = await output;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"python exited with {process.ExitCode}: {await error}");
        }

        return stdout;
    }
}
