using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Celeriac.InteropTests;

/// <summary>
/// A Celeriac worker in its own process: the built Quickstart (which is also the <c>celeriac</c> CLI, with the
/// Quickstart's tasks) run as <c>dotnet Quickstart.dll worker -A Celeriac.TestTasks.dll ...</c>, configured by
/// <c>CELERIAC_*</c> variables only; started and awaited until it logs <c>ready.</c>, killed on dispose.
/// </summary>
public sealed class CeleriacWorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private CeleriacWorkerProcess(Process process) => _process = process;

    /// <summary>The process id.</summary>
    public int Id => _process.Id;

    /// <summary>Everything the worker printed so far (stdout and stderr).</summary>
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
    /// Starts a worker on <paramref name="brokerUrl"/> and <paramref name="backendUrl"/> consuming <paramref name="queue"/>
    /// with <paramref name="concurrency"/> slots, in <paramref name="workDir"/>, and waits (up to 60 s) until it is ready.
    /// </summary>
    public static async Task<CeleriacWorkerProcess> StartAsync(
        string workDir, string brokerUrl, string backendUrl, string queue, int concurrency, string nodeName, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in (string[])[
            Path.Join(AppContext.BaseDirectory, "Quickstart.dll"), "worker",
            "-A", typeof(Celeriac.TestTasks.ChordBodyTasks).Assembly.Location,
            "-Q", queue, "-c", concurrency.ToString(CultureInfo.InvariantCulture), "-n", nodeName,
            // Warnings only: 'ready.' is one, and ten thousand 'received'/'succeeded' lines would cost the test CPU.
            "-l", "warning"])
        {
            start.ArgumentList.Add(a);
        }

        // Only what this test sets: no CELERIAC_* of the environment the tests run in.
        foreach (string name in start.Environment.Keys.Where(n => n.StartsWith("CELERIAC_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(name);
        }

        start.Environment["CELERIAC_BROKER_URL"] = brokerUrl;
        start.Environment["CELERIAC_RESULT_BACKEND"] = backendUrl;
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var worker = new CeleriacWorkerProcess(new Process { StartInfo = start });
        worker._process.OutputDataReceived += (_, e) => worker.Append(e.Data);
        worker._process.ErrorDataReceived += (_, e) => worker.Append(e.Data);
        worker._process.Start();
        worker._process.BeginOutputReadLine();
        worker._process.BeginErrorReadLine();
        try
        {
            await Task.WhenAny(worker._ready.Task, worker._process.WaitForExitAsync()).WaitAsync(TimeSpan.FromSeconds(60));
            if (!worker._ready.Task.IsCompleted)
            {
                throw new InvalidOperationException($"the Celeriac worker exited with {worker._process.ExitCode} before it was ready:\n{worker.Log}");
            }
        }
        catch (TimeoutException)
        {
            await worker.DisposeAsync();
            throw new TimeoutException($"the Celeriac worker was not ready within 60 s:\n{worker.Log}");
        }
        catch
        {
            await worker.DisposeAsync();
            throw;
        }

        return worker;
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

        if (line.EndsWith(" ready.", StringComparison.Ordinal))
        {
            _ready.TrySetResult();
        }
    }

    /// <summary>
    /// Warm shutdown (SIGTERM, as Celery's): the worker stops consuming, finishes what it runs and returns what it
    /// had prefetched to the queue; returns its exit code, or throws <see cref="TimeoutException"/> with its log.
    /// </summary>
    public Task<int> StopAsync(TimeSpan timeout) => ProcessSignals.StopAsync(_process, timeout, "Celeriac worker", () => Log);

    /// <summary>Kills the worker if it still runs.</summary>
    public async ValueTask DisposeAsync()
    {
        await ProcessSignals.KillAsync(_process);
        _process.Dispose();
    }
}
