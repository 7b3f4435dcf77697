using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Celeriac.InteropTests;

/// <summary>
/// A real Celery 5.2 worker (<c>python3 -m celery -A interop_tasks worker -P threads</c>) with the Quickstart's
/// tasks in Python, consuming given queues; started and awaited until it logs <c>ready.</c>, killed on dispose.
/// </summary>
public sealed class PythonWorker : IAsyncDisposable
{
    private readonly StringBuilder _log = new();
    private readonly Process _process;
    private readonly SemaphoreSlim _logged = new(0);

    private PythonWorker(Process process) => _process = process;

    /// <summary>Everything the worker printed so far (banner, log lines).</summary>
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
    /// Starts a worker on <paramref name="brokerUrl"/> and <paramref name="backendUrl"/> and waits until it is ready.
    /// <paramref name="pool"/> is Celery's <c>-P</c> (<c>threads</c>, or <c>solo</c> for one task at a time in the main loop);
    /// <paramref name="prefetchMultiplier"/> its <c>--prefetch-multiplier</c> (Celery's default 4 when null);
    /// <paramref name="queueMaxPriority"/> its <c>task_queue_max_priority</c> (the queues' x-max-priority on RabbitMQ);
    /// <paramref name="environment"/> more variables for interop_tasks (e.g. <c>CELERY_RESULT_EXTENDED=1</c>).
    /// </summary>
    public static async Task<PythonWorker> StartAsync(
        string brokerUrl, string backendUrl, string queues, int concurrency, string nodeName, bool trackStarted = false, string pool = "threads",
        double visibilityTimeout = 3600, int? prefetchMultiplier = null, int? queueMaxPriority = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(PythonCelery.Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        PythonCelery.Configure(start, new Dictionary<string, string>
        {
            ["CELERY_BROKER_URL"] = brokerUrl,
            ["CELERY_RESULT_BACKEND"] = backendUrl,
            ["CELERY_TASK_TRACK_STARTED"] = trackStarted ? "1" : "0",
            ["CELERY_VISIBILITY_TIMEOUT"] = visibilityTimeout.ToString(CultureInfo.InvariantCulture),
            ["CELERY_QUEUE_MAX_PRIORITY"] = queueMaxPriority?.ToString(CultureInfo.InvariantCulture) ?? "",
        });
        foreach (KeyValuePair<string, string> kv in environment ?? new Dictionary<string, string>())
        {
            start.Environment[kv.Key] = kv.Value;
        }

        foreach (string a in (string[])[
            "-m", "celery", "-A", "interop_tasks", "worker", "-P", pool, "-c", concurrency.ToString(CultureInfo.InvariantCulture),
            "-Q", queues, "-n", nodeName, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"])
        {
            start.ArgumentList.Add(a);
        }

        if (prefetchMultiplier is { } multiplier)
        {
            start.ArgumentList.Add("--prefetch-multiplier");
            start.ArgumentList.Add(multiplier.ToString(CultureInfo.InvariantCulture));
        }

        var worker = new PythonWorker(Process.Start(start)!);
        worker._process.OutputDataReceived += (_, e) => worker.Append(e.Data);
        worker._process.ErrorDataReceived += (_, e) => worker.Append(e.Data);
        worker._process.BeginOutputReadLine();
        worker._process.BeginErrorReadLine();
        try
        {
            await worker.WaitForLogAsync(" ready.", TimeSpan.FromSeconds(30));
        }
        catch
        {
            await worker.DisposeAsync();
            throw;
        }

        return worker;
    }

    /// <summary>Waits until the log contains <paramref name="text"/>; throws <see cref="TimeoutException"/> with the log otherwise.</summary>
    public async Task WaitForLogAsync(string text, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (!Log.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"the Celery worker exited with {_process.ExitCode} before logging '{text}':\n{Log}");
            }

            try
            {
                await _logged.WaitAsync(TimeSpan.FromMilliseconds(200), cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"the Celery worker did not log '{text}' within {timeout.TotalSeconds} s:\n{Log}");
            }
        }
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

        _logged.Release();
    }

    /// <summary>
    /// Warm shutdown (SIGTERM): Celery stops consuming, finishes the tasks it runs and restores the messages it had
    /// prefetched to their queue; returns the exit code, or throws <see cref="TimeoutException"/> with the log.
    /// </summary>
    public Task<int> StopAsync(TimeSpan timeout) => ProcessSignals.StopAsync(_process, timeout, "Celery worker", () => Log);

    /// <summary>Kills the worker (and its pool threads with it).</summary>
    public async ValueTask DisposeAsync()
    {
        await ProcessSignals.KillAsync(_process);
        _process.Dispose();
        _logged.Dispose();
    }
}
