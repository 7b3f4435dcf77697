using System.Diagnostics;

namespace Celeriac.InteropTests;

/// <summary>Runs a Python snippet with Debian's Celery (<c>/usr/bin/python3</c>, package python3-celery).</summary>
internal static class PythonCelery
{
    public const string Python = "/usr/bin/python3";

    /// <summary>The folder of <c>interop_tasks.py</c> and <c>interop_client.py</c>, copied beside the tests.</summary>
    public static string ModulesDirectory => Path.Combine(AppContext.BaseDirectory, "python");

    /// <summary>Runs <paramref name="script"/> with <paramref name="args"/> and returns its stdout; fails the test on a non-zero exit.</summary>
    public static Task<string> RunAsync(string script, params string[] args) => RunAsync(script, null, args);

    /// <summary>
    /// Runs <paramref name="script"/> with <paramref name="environment"/> added to the environment and the interop
    /// modules on <c>PYTHONPATH</c>; returns its stdout and fails the test on a non-zero exit or after 60 s.
    /// </summary>
    public static async Task<string> RunAsync(string script, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        Assert.True(File.Exists(Python), $"{Python} is missing: scripts/provision.sh installs python3-celery");
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Configure(start, environment);
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
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"python did not exit within 60 s:\n{await stderr}");
        }

        Assert.True(process.ExitCode == 0, $"python exited {process.ExitCode}:\n{await stderr}");
        return await stdout;
    }

    /// <summary>Puts the interop modules on <c>PYTHONPATH</c> and adds <paramref name="environment"/>.</summary>
    public static void Configure(ProcessStartInfo start, IReadOnlyDictionary<string, string>? environment)
    {
        start.Environment["PYTHONPATH"] = ModulesDirectory;
        start.Environment["PYTHONUNBUFFERED"] = "1";
        start.Environment["PYTHONIOENCODING"] = "utf-8";
        start.WorkingDirectory = ModulesDirectory;
        if (environment is not null)
        {
            foreach (KeyValuePair<string, string> kv in environment)
            {
                start.Environment[kv.Key] = kv.Value;
            }
        }
    }
}
