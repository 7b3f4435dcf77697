using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Celeriac.Benchmarks;

/// <summary>
/// Python Celery 5.2 as Debian ships it (<c>/usr/bin/python3</c>, not a python3 on PATH): the scripts in
/// <c>benchmarks/python</c> and <c>tests/python/interop_tasks.py</c>, copied next to this program under
/// <c>python/</c>. Broker and backend reach them as <c>CELERY_BROKER_URL</c> and <c>CELERY_RESULT_BACKEND</c>.
/// </summary>
internal static class PythonCelery
{
    public const string Interpreter = "/usr/bin/python3";

    private const int TailChars = 2000;

    /// <summary>The folder holding the scripts and <c>interop_tasks.py</c>.</summary>
    public static string Folder => Path.Join(AppContext.BaseDirectory, "python");

    /// <summary>A <c>/usr/bin/python3</c> start with the scripts' folder on PYTHONPATH and the given broker and backend.</summary>
    public static ProcessStartInfo StartInfo(string brokerUrl, string backendUrl, IEnumerable<string> args)
    {
        if (!File.Exists(Interpreter))
        {
            throw new InvalidOperationException($"{Interpreter} is missing (Debian's python3-celery runs with it).");
        }

        var start = new ProcessStartInfo(Interpreter) { WorkingDirectory = Folder, UseShellExecute = false };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // Only these settings configure it: no CELERY_* from the caller's environment.
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("CELERY_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }

        start.Environment["CELERY_BROKER_URL"] = brokerUrl;
        start.Environment["CELERY_RESULT_BACKEND"] = backendUrl;
        start.Environment["PYTHONPATH"] = Folder;
        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        start.Environment["PYTHONUNBUFFERED"] = "1";
        return start;
    }

    /// <summary>
    /// <c>python3 -m celery -A <paramref name="module"/> worker -P <paramref name="pool"/> -c <paramref name="concurrency"/></c>
    /// without gossip, mingle and heartbeat (with <paramref name="events"/>, <c>-E</c>), at log level warning (Celery's own default). The module is
    /// <c>interop_tasks</c> (the Quickstart's tasks) or <c>bench_tasks</c> (those and the pool figures' tasks).
    /// </summary>
    public static WorkerProcess StartWorker(string brokerUrl, string backendUrl, string pool, int concurrency, string module = "interop_tasks", bool events = false)
    {
        string c = concurrency.ToString(CultureInfo.InvariantCulture);
        string name = $"celery-{pool}-{c}";
        ProcessStartInfo start = StartInfo(brokerUrl, backendUrl,
        [
            "-m", "celery", "-A", module, "worker", "-P", pool, "-c", c, "-n", name + "@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", .. events ? (string[])["-E"] : [], "-l", "warning",
        ]);
        return WorkerProcess.Launch(start, name);
    }

    /// <summary>Runs one script to its end (killing it after <paramref name="timeout"/>) and parses the last line it printed as JSON.</summary>
    public static async Task<JsonElement> RunScriptAsync(string script, string brokerUrl, string backendUrl, TimeSpan timeout, params string[] args)
    {
        ProcessStartInfo start = StartInfo(brokerUrl, backendUrl, [Path.Join(Folder, script), .. args]);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"{script} did not start");
        using IDisposable cleanup = Cleanup.Register($"{script} (pid {process.Id})", () =>
        {
            process.Kill(entireProcessTree: true);
            return ValueTask.CompletedTask;
        });
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using (var cts = new CancellationTokenSource(timeout))
        {
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                throw new TimeoutException($"{script} did not finish within {timeout.TotalSeconds:0} s: {Tail(await stderr)}");
            }
        }

        string output = await stdout;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{script} exited with {process.ExitCode}: {Tail(await stderr)}");
        }

        string? last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        if (last is null)
        {
            throw new InvalidOperationException($"{script} printed nothing: {Tail(await stderr)}");
        }

        using JsonDocument json = JsonDocument.Parse(last);
        return json.RootElement.Clone();
    }

    private static string Tail(string text) => text.Length <= TailChars ? text.Trim() : "..." + text[^TailChars..].Trim();
}
