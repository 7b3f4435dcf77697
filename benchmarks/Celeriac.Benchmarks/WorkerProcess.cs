using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Celeriac.Benchmarks;

/// <summary>
/// This benchmark run as a worker process (<c>dotnet Celeriac.Benchmarks.dll worker --broker URL ...</c>), with its
/// output captured. <see cref="Ready"/> completes on the line ending in <c> ready.</c>. Disposing kills it if it runs.
/// </summary>
internal sealed class WorkerProcess : IAsyncDisposable
{
    private const int TailLines = 20;
    private readonly Process _process;
    private readonly Queue<string> _tail = new();
    private readonly TaskCompletionSource<TimeSpan> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _started;
    private IDisposable? _cleanup;

    private WorkerProcess(Process process) => _process = process;

    /// <summary>The time from <c>Process.Start</c> to the ready line.</summary>
    public Task<TimeSpan> Ready => _ready.Task;

    public int Id => _process.Id;

    /// <summary>The last lines it printed (for an error report).</summary>
    public string Tail
    {
        get
        {
            lock (_tail)
            {
                return string.Join(" | ", _tail);
            }
        }
    }

    public static WorkerProcess Start(string workDir, string brokerUrl, string name, params string[] extra) =>
        Start(new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, ArgumentList = { typeof(BenchTasks).Assembly.Location, "worker" } }, brokerUrl, name, extra);

    /// <summary>A NativeAOT worker (<c>samples/AotWorker</c> published): the same options, its own executable.</summary>
    public static WorkerProcess StartNative(string executable, string workDir, string brokerUrl, string name, params string[] extra) =>
        Start(new ProcessStartInfo(executable) { WorkingDirectory = workDir }, brokerUrl, name, extra);

    private static WorkerProcess Start(ProcessStartInfo start, string brokerUrl, string name, string[] extra)
    {
        start.ArgumentList.Add("--broker");
        start.ArgumentList.Add(brokerUrl);
        start.ArgumentList.Add("-n");
        start.ArgumentList.Add(name + "@%h");
        foreach (string arg in extra)
        {
            start.ArgumentList.Add(arg);
        }

        // Only the flags configure it: no CELERIAC_* from the caller's environment.
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("CELERIAC_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }

        return Launch(start, name);
    }

    /// <summary>
    /// Any other worker (a Python Celery one): <paramref name="start"/>'s output is captured the same way. Its
    /// <see cref="Ready"/> completes only if it prints a line ending in <c> ready.</c>.
    /// </summary>
    public static WorkerProcess Launch(ProcessStartInfo start, string name)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.RedirectStandardInput = false;
        start.UseShellExecute = false;
        var process = new Process { StartInfo = start };
        var worker = new WorkerProcess(process);
        process.OutputDataReceived += (_, e) => worker.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => worker.OnLine(e.Data);
        process.Exited += (_, _) => worker._ready.TrySetException(new InvalidOperationException($"worker {name} exited before it was ready: {worker.Tail}"));
        process.EnableRaisingEvents = true;
        worker._started = Stopwatch.GetTimestamp();
        process.Start();
        worker._cleanup = Cleanup.Register($"worker {name} (pid {process.Id})", worker.DisposeAsync);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        if (line.EndsWith(" ready.", StringComparison.Ordinal))
        {
            _ready.TrySetResult(Stopwatch.GetElapsedTime(_started));
        }

        lock (_tail)
        {
            _tail.Enqueue(line);
            if (_tail.Count > TailLines)
            {
                _tail.Dequeue();
            }
        }
    }

    /// <summary>Waits for the ready line; throws with the worker's last lines on timeout or early exit.</summary>
    public async Task<TimeSpan> WaitReadyAsync(TimeSpan timeout)
    {
        try
        {
            return await Ready.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"worker pid {Id} not ready within {timeout.TotalSeconds:0}s: {Tail}");
        }
    }

    /// <summary>Warm shutdown: SIGTERM with /bin/kill, then waits (killing it after <paramref name="timeout"/>).</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return;
        }

        using (Process kill = Process.Start("/bin/kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Progress.Say($"worker pid {_process.Id} did not stop within {timeout.TotalSeconds:0}s of SIGTERM; killing it");
            Kill();
        }
    }

    /// <summary>Resident memory (VmRSS) in MB.</summary>
    public double ReadRssMegabytes()
    {
        foreach (string line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                // "VmRSS:     41234 kB"
                string kb = line["VmRSS:".Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) / 1024.0;
            }
        }

        throw new InvalidOperationException("no VmRSS in /proc/<pid>/status");
    }

    /// <summary>utime + stime in clock ticks, from /proc/&lt;pid&gt;/stat (fields 14 and 15).</summary>
    public long ReadCpuTicks()
    {
        string stat = File.ReadAllText($"/proc/{_process.Id}/stat");

        // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        try
        {
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            Progress.Say($"worker pid {_process.Id} still running after kill");
        }

        _cleanup?.Dispose();
        _process.Dispose();
    }

    /// <summary>Starts <paramref name="count"/> workers and waits until each is ready; kills them all if one fails.</summary>
    public static async Task<List<WorkerProcess>> StartManyAsync(string workDir, string brokerUrl, int count, TimeSpan timeout, params string[] extra)
    {
        var workers = new List<WorkerProcess>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                workers.Add(Start(workDir, brokerUrl, "w" + (i + 1).ToString(CultureInfo.InvariantCulture), extra));
            }

            foreach (WorkerProcess w in workers)
            {
                await w.WaitReadyAsync(timeout);
            }

            return workers;
        }
        catch
        {
            foreach (WorkerProcess w in workers)
            {
                await w.DisposeAsync();
            }

            throw;
        }
    }
}
