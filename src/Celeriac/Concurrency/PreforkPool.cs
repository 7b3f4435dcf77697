using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Celeriac.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Celeriac.Concurrency;

/// <summary>Settings of a <see cref="PreforkPool"/>.</summary>
public sealed class PreforkPoolOptions
{
    /// <summary>A child is replaced after this many tasks (Celery's <c>worker_max_tasks_per_child</c>). <value>null: never</value></summary>
    public int? MaxTasksPerChild { get; init; }

    /// <summary>
    /// A child is replaced after a task that leaves its resident memory above this many KiB (Celery's
    /// <c>worker_max_memory_per_child</c>; read from <c>/proc</c>, so Linux only). <value>null: never</value>
    /// </summary>
    public long? MaxMemoryPerChild { get; init; }

    /// <summary>The program a child runs. <value>null: this process's own executable, with its own arguments</value></summary>
    public string? FileName { get; init; }

    /// <summary>The child's arguments when <see cref="FileName"/> is set.</summary>
    public IReadOnlyList<string>? Arguments { get; init; }

    /// <summary>How long a child may take from its start to its ready frame. <value>60 s</value></summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// Runs each task in a child process (<c>-P prefork</c>): the same executable with the same arguments, marked by
/// <see cref="ChildVariable"/>, which builds the same app and serves the parent over a Unix domain socket instead of
/// running a worker. A task that crashes its child, or that reaches its hard time limit (the child is killed), cannot
/// take the worker with it: its outcome is <see cref="TaskOutcomeKind.WorkerLost"/> or
/// <see cref="TaskOutcomeKind.TimeLimitExceeded"/>, and another child takes the place of the one that is gone.
/// </summary>
public sealed class PreforkPool : ITaskPool
{
    /// <summary>The environment variable that marks a pool child; its value is the socket the child connects to.</summary>
    public const string ChildVariable = "CELERIAC_POOL_CHILD";

    private static readonly TimeSpan s_grace = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan s_maxBackOff = TimeSpan.FromSeconds(30);
    private static readonly Task s_never = new TaskCompletionSource().Task;

    private readonly PreforkPoolOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _file;
    private readonly IReadOnlyList<string> _arguments;
    private readonly Lock _gate = new();
    private readonly Queue<Child> _idle = new();
    private readonly Queue<TaskCompletionSource<Child>> _waiters = new();
    private readonly HashSet<Child> _children = [];
    private readonly CancellationTokenSource _disposing = new();
    private int _size;

    // Children that count towards the size: starting, idle or busy, not retiring.
    private int _count;
    private bool _started;
    private bool _disposed;

    /// <summary>Creates a pool of <paramref name="size"/> children, started by <see cref="StartAsync"/>.</summary>
    public PreforkPool(int size, PreforkPoolOptions? options, TimeProvider time, ILogger logger)
    {
        _size = Math.Max(1, size);
        _options = options ?? new PreforkPoolOptions();
        _time = time;
        _logger = logger;
        (_file, _arguments) = _options.FileName is { } file ? (file, _options.Arguments ?? []) : OwnCommand();
    }

    /// <summary>
    /// The socket a child connects to, from <see cref="ChildVariable"/>'s value: <c>@name</c> is a Linux abstract socket
    /// (no file, so a worker killed while it starts a child leaves nothing behind), anything else a file path.
    /// </summary>
    public static UnixDomainSocketEndPoint EndPointOf(string address)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        return new UnixDomainSocketEndPoint(address[0] == '@' ? "\0" + address[1..] : address);
    }

    /// <summary>Whether this process is a prefork pool's child (<see cref="ChildVariable"/> is set).</summary>
    public static bool IsChildProcess => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(ChildVariable));

    /// <inheritdoc />
    public string Name => PoolNames.Prefork;

    /// <inheritdoc />
    public int Size => Volatile.Read(ref _size);

    /// <summary>The process ids of the children alive now.</summary>
    public IReadOnlyList<int> ChildProcessIds
    {
        get
        {
            lock (_gate)
            {
                return [.. _children.Where(c => !c.Dead).Select(c => c.Pid)];
            }
        }
    }

    /// <summary>Starts the children and waits until each has said it is ready or has failed once (it is retried in the background).</summary>
    public async ValueTask StartAsync(CancellationToken ct = default)
    {
        List<Task> first = [];
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _started = true;
            while (_count < _size)
            {
                _count++;
                var attempt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                first.Add(attempt.Task);
                _ = KeepChildAsync(attempt);
            }
        }

        await Task.WhenAll(first).WaitAsync(ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<TaskOutcome> RunAsync(PoolJob job, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        ReadOnlyMemory<byte> request = job.Serialize()
            ?? throw new ArgumentException("The prefork pool runs a job in a child process: the job must serialize.", nameof(job));
        Child child;
        try
        {
            child = await RentAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return TaskOutcome.Lost("cold shutdown");
        }

        var pending = new TaskCompletionSource<byte[]?>(TaskCreationOptions.RunContinuationsAsynchronously);
        child.SetPending(pending);
        try
        {
            await PoolFrames.WriteAsync(child.Stream, PoolFrameType.Run, request, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // It died before it took the request: its read loop settles the pending run as lost.
        }

        Task first;
        var cancel = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task cancelled = cancel.Task;
        using (var timer = new CancellationTokenSource())
        using (ct.Register(static c => ((TaskCompletionSource)c!).TrySetResult(), cancel))
        {
            Task hard = job.HardTimeLimit is { } h ? Task.Delay(TimeSpan.FromSeconds(h), _time, timer.Token) : s_never;
            first = await Task.WhenAny(pending.Task, hard, cancelled).ConfigureAwait(false);
            await timer.CancelAsync().ConfigureAwait(false);
        }

        if (first == pending.Task)
        {
            if (pending.Task.Result is not { } payload)
            {
                string reason = child.ExitReason;
                Log.ChildLost(_logger, child.Pid, job.TaskName, job.TaskId, reason);
                return TaskOutcome.Lost(reason);
            }

            if (!TaskOutcomeCodec.TryDecode(payload, out TaskOutcome? outcome, out string? error))
            {
                Log.ChildBadFrame(_logger, child.Pid, error!);
                child.Kill();
                return TaskOutcome.Lost("a bad outcome frame");
            }

            AfterTask(child);
            return outcome!;
        }

        // The child goes with the task: nothing else stops code that ignores its token.
        child.TakePending();
        if (first != cancelled)
        {
            string seconds = TaskOutcome.FormatSeconds(job.HardTimeLimit!.Value);
            Log.HardTimeLimitExceeded(_logger, seconds, job.TaskName, job.TaskId);
            Log.ChildKilledAtHardLimit(_logger, child.Pid, seconds, job.TaskName, job.TaskId);
            child.Kill();
            return TaskOutcome.TimeLimit(job.HardTimeLimit.Value);
        }

        Log.ChildKilledCancelled(_logger, child.Pid, job.TaskName, job.TaskId);
        child.Kill();
        return TaskOutcome.Lost("signal 9 (SIGKILL)");
    }

    /// <inheritdoc />
    public void Resize(int size)
    {
        size = Math.Max(1, size);
        int start = 0;
        List<Child> retire = [];
        lock (_gate)
        {
            Volatile.Write(ref _size, size);
            if (!_started || _disposed)
            {
                return;
            }

            for (; _count < size; _count++)
            {
                start++;
            }

            // Idle children go now; busy ones when their task is done (see Return).
            while (_count > size && _idle.TryDequeue(out Child? idle))
            {
                if (!idle.Dead && !idle.Retiring)
                {
                    _count--;
                    idle.Retiring = true;
                    retire.Add(idle);
                }
            }
        }

        for (; start > 0; start--)
        {
            _ = KeepChildAsync(null);
        }

        foreach (Child child in retire)
        {
            child.Close();
        }
    }

    /// <summary>Closes every child's socket (a child ends when it reads the end), and kills those still there after a grace period.</summary>
    public async ValueTask DisposeAsync()
    {
        List<Child> all;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            all = [.. _children];
            _idle.Clear();
            while (_waiters.TryDequeue(out TaskCompletionSource<Child>? waiter))
            {
                waiter.TrySetException(new ObjectDisposedException(nameof(PreforkPool)));
            }
        }

        await _disposing.CancelAsync().ConfigureAwait(false);
        foreach (Child child in all)
        {
            child.Retiring = true;
            child.Close();
        }

        try
        {
            await Task.WhenAll(all.Select(c => c.Gone)).WaitAsync(s_grace + s_grace).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            foreach (Child child in all)
            {
                child.Kill();
            }
        }

        _disposing.Dispose();
    }

    /// <summary>Billiard's words for how a process ended: <c>exitcode 1</c>, <c>signal 9 (SIGKILL)</c>.</summary>
    public static string DescribeExit(int exitCode) => exitCode is > 128 and < 128 + 65
        ? $"signal {exitCode - 128} ({SignalName(exitCode - 128)})"
        : "exitcode " + exitCode.ToString(CultureInfo.InvariantCulture);

    private static string SignalName(int signal) => signal switch
    {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => "SIG" + signal.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// This process's own command: the executable and the arguments it was started with, so that a child builds the
    /// same app. <c>dotnet app.dll args</c> keeps <c>app.dll</c> (and any host options) as arguments; an apphost
    /// has only the program's own.
    /// </summary>
    internal static (string File, IReadOnlyList<string> Arguments) OwnCommand()
    {
        string file = Environment.ProcessPath ?? throw new InvalidOperationException("The prefork pool needs the path of this process's executable.");
        string[]? argv = null;
        if (OperatingSystem.IsLinux())
        {
            try
            {
                // The exact argv, host options included, which GetCommandLineArgs does not give for `dotnet exec ...`.
                argv = File.ReadAllText("/proc/self/cmdline").TrimEnd('\0').Split('\0');
            }
            catch (IOException)
            {
                argv = null;
            }
            catch (UnauthorizedAccessException)
            {
                argv = null;
            }
        }

        if (argv is null || argv.Length == 0)
        {
            string[] args = Environment.GetCommandLineArgs();

            // Its first element is the entry assembly: an argument of the dotnet host, not of an apphost.
            bool host = string.Equals(Path.GetFileNameWithoutExtension(file), "dotnet", StringComparison.OrdinalIgnoreCase);
            argv = host ? [file, .. args] : args;
        }

        return (file, argv[1..]);
    }

    private async ValueTask<Child> RentAsync(CancellationToken ct)
    {
        TaskCompletionSource<Child> waiter;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            while (_idle.TryDequeue(out Child? idle))
            {
                if (!idle.Dead && !idle.Retiring)
                {
                    return idle;
                }
            }

            waiter = new TaskCompletionSource<Child>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Enqueue(waiter);
        }

        // Cancelled under the gate, so that Return never hands a child to a waiter that has gone.
        using CancellationTokenRegistration registration = ct.Register(() =>
        {
            lock (_gate)
            {
                waiter.TrySetCanceled(ct);
            }
        });
        return await waiter.Task.ConfigureAwait(false);
    }

    /// <summary>A child is free again: to a waiting run, to the idle queue, or away when the pool has shrunk.</summary>
    private void Return(Child child)
    {
        lock (_gate)
        {
            if (child.Dead || child.Retiring)
            {
                return;
            }

            if (!_disposed && _count <= _size)
            {
                while (_waiters.TryDequeue(out TaskCompletionSource<Child>? waiter))
                {
                    if (waiter.TrySetResult(child))
                    {
                        return;
                    }
                }

                _idle.Enqueue(child);
                return;
            }

            _count--;
            child.Retiring = true;
        }

        child.Close();
    }

    /// <summary>After a task: the child goes back to the pool, or is replaced when it has run its tasks or holds too much memory.</summary>
    private void AfterTask(Child child)
    {
        child.Tasks++;
        if (_options.MaxTasksPerChild is { } max && child.Tasks >= max)
        {
            Log.ChildMaxTasks(_logger, child.Pid, child.Tasks);
        }
        else if (_options.MaxMemoryPerChild is { } limit && ResidentKiB(child.Pid) is { } resident && resident > limit)
        {
            Log.ChildMaxMemory(_logger, child.Pid, resident, limit);
        }
        else
        {
            Return(child);
            return;
        }

        lock (_gate)
        {
            child.Retiring = true;
        }

        // Its place in the count passes to the one that replaces it.
        _ = KeepChildAsync(null);
        child.Close();
    }

    /// <summary>Starts one child, again with back-off while it fails, until it serves or the pool no longer needs it.</summary>
    private async Task KeepChildAsync(TaskCompletionSource? firstAttempt)
    {
        TimeSpan delay = TimeSpan.FromSeconds(1);
        try
        {
            while (true)
            {
                lock (_gate)
                {
                    if (_disposed || _count > _size)
                    {
                        _count--;
                        return;
                    }
                }

                Child? child = await SpawnAsync(delay).ConfigureAwait(false);
                firstAttempt?.TrySetResult();
                firstAttempt = null;
                if (child is not null)
                {
                    Return(child);
                    return;
                }

                try
                {
                    await Task.Delay(delay, _time, _disposing.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    lock (_gate)
                    {
                        _count--;
                    }

                    return;
                }

                delay = delay * 2 > s_maxBackOff ? s_maxBackOff : delay * 2;
            }
        }
        finally
        {
            firstAttempt?.TrySetResult();
        }
    }

    /// <summary>Starts a child and waits for its ready frame; on failure logs one line (exit, stderr's tail) and returns null.</summary>
    private async Task<Child?> SpawnAsync(TimeSpan retryIn)
    {
        string name = $"celeriac-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..12]}";
        string path = OperatingSystem.IsLinux() ? "@" + name : Path.Join(Path.GetTempPath(), name + ".sock");
        var tail = new OutputTail();
        Process? process = null;
        Socket? socket = null;
        string reason;
        try
        {
            using (var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                listener.Bind(EndPointOf(path));
                listener.Listen(1);
                var start = new ProcessStartInfo(_file)
                {
                    UseShellExecute = false,
                    RedirectStandardError = true,
                    WorkingDirectory = Environment.CurrentDirectory,
                };
                foreach (string arg in _arguments)
                {
                    start.ArgumentList.Add(arg);
                }

                start.Environment[ChildVariable] = path;
                process = new Process { StartInfo = start };
                process.ErrorDataReceived += (_, e) => tail.Add(e.Data);
                process.Start();
                process.BeginErrorReadLine();

                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_disposing.Token);
                deadline.CancelAfter(_options.StartTimeout);
                Task<Socket> accept = listener.AcceptAsync(deadline.Token).AsTask();
                Task exited = process.WaitForExitAsync(deadline.Token);
                await Task.WhenAny(accept, exited).ConfigureAwait(false);
                if (!accept.IsCompletedSuccessfully)
                {
                    await deadline.CancelAsync().ConfigureAwait(false);
                    await Task.WhenAll(accept, exited).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    if (accept.IsCompletedSuccessfully)
                    {
                        accept.Result.Dispose();
                    }

                    throw new StartFailedException(process.HasExited ? DescribeExit(process.ExitCode) : $"no connection within {_options.StartTimeout.TotalSeconds}s");
                }

                socket = accept.Result;
                var stream = new NetworkStream(socket, ownsSocket: true);
                (PoolFrameType Type, byte[] Payload)? ready = await PoolFrames.ReadAsync(stream, deadline.Token).ConfigureAwait(false);
                if (ready is not { Type: PoolFrameType.Ready })
                {
                    await stream.DisposeAsync().ConfigureAwait(false);
                    await process.WaitForExitAsync(CancellationToken.None).WaitAsync(s_grace, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    throw new StartFailedException(process.HasExited ? DescribeExit(process.ExitCode) : "no ready frame");
                }

                var child = new Child(process, socket, stream);
                bool added;
                lock (_gate)
                {
                    added = !_disposed && _children.Add(child);
                }

                if (added)
                {
                    child.Gone = WatchAsync(child);
                    Log.ChildReady(_logger, child.Pid);
                    return child;
                }

                child.Kill();
                await stream.DisposeAsync().ConfigureAwait(false);
                return null;
            }
        }
        catch (StartFailedException ex)
        {
            reason = ex.Message;
        }
        catch (Exception ex) when (ex is SocketException or IOException or InvalidDataException or Win32Exception or OperationCanceledException or InvalidOperationException)
        {
            reason = ex.Message;
        }
        finally
        {
            if (path[0] != '@')
            {
                File.Delete(path);
            }
        }

        socket?.Dispose();
        int pid = 0;
        if (process is not null)
        {
            try
            {
                pid = process.Id;
                process.Kill();
            }
            catch (InvalidOperationException)
            {
                // Never started, or already gone.
            }

            process.Dispose();
        }

        if (!_disposing.IsCancellationRequested)
        {
            Log.ChildStartFailed(_logger, pid, reason, retryIn.TotalSeconds, tail.Text);
        }

        return null;
    }

    /// <summary>
    /// Reads the child's frames until its socket ends, then makes sure it is gone, settles a run it held as lost and,
    /// unless the pool meant it to go, starts another in its place.
    /// </summary>
    private async Task WatchAsync(Child child)
    {
        string? broken = null;
        try
        {
            while (await PoolFrames.ReadAsync(child.Stream, CancellationToken.None).ConfigureAwait(false) is { } frame)
            {
                if (frame.Type != PoolFrameType.Outcome || child.TakePending() is not { } pending)
                {
                    broken = $"an unexpected {frame.Type} frame";
                    break;
                }

                pending.TrySetResult(frame.Payload);
            }
        }
        catch (InvalidDataException ex)
        {
            broken = ex.Message;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // The socket ended: the child is gone or going.
        }

        if (broken is not null && !child.Retiring)
        {
            Log.ChildBadFrame(_logger, child.Pid, broken);
            child.Kill();
        }

        try
        {
            await child.Process.WaitForExitAsync(CancellationToken.None).WaitAsync(s_grace, CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            child.Kill();
            await child.Process.WaitForExitAsync(CancellationToken.None).WaitAsync(s_grace, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        child.MarkDead();
        bool busy = false;
        if (child.TakePending() is { } lost)
        {
            busy = true;
            lost.TrySetResult(null);
        }

        bool replace;
        lock (_gate)
        {
            _children.Remove(child);
            replace = !_disposed && !child.Retiring;
            if (replace && _count > _size)
            {
                _count--;
                replace = false;
            }
        }

        if (replace && !busy && !child.Killed)
        {
            Log.ChildExitedIdle(_logger, child.Pid, child.ExitReason);
        }

        if (replace)
        {
            _ = KeepChildAsync(null);
        }

        await child.Stream.DisposeAsync().ConfigureAwait(false);
    }

    private static long? ResidentKiB(int pid)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    string digits = new([.. line.AsSpan(6).Trim().ToString().TakeWhile(char.IsAsciiDigit)]);
                    return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long kib) ? kib : null;
                }
            }
        }
        catch (IOException)
        {
            // Not Linux, or it is gone.
        }
        catch (UnauthorizedAccessException)
        {
            // Not readable here.
        }

        return null;
    }

    private sealed class StartFailedException(string message) : Exception(message);

    /// <summary>One child process and its end of the socket.</summary>
    private sealed class Child(Process process, Socket socket, NetworkStream stream)
    {
        private TaskCompletionSource<byte[]?>? _pending;
        private volatile bool _dead;
        private volatile bool _retiring;
        private volatile bool _killed;

        public Process Process => process;

        public int Pid { get; } = process.Id;

        public NetworkStream Stream => stream;

        public int Tasks { get; set; }

        public Task Gone { get; set; } = Task.CompletedTask;

        public bool Dead => _dead;

        public bool Killed => _killed;

        /// <summary>The pool means it to go: it is not replaced when it does.</summary>
        public bool Retiring
        {
            get => _retiring;
            set => _retiring = value;
        }

        public string ExitReason => process.HasExited ? DescribeExit(process.ExitCode) : "unknown";

        /// <summary>
        /// Hands it a run. Both this and <see cref="MarkDead"/> are full fences, so a run given to a child that has just
        /// died is seen by one side or the other and settled as lost, never left waiting.
        /// </summary>
        public void SetPending(TaskCompletionSource<byte[]?> pending)
        {
            Interlocked.Exchange(ref _pending, pending);
            if (_dead && TakePending() is { } lost)
            {
                lost.TrySetResult(null);
            }
        }

        public TaskCompletionSource<byte[]?>? TakePending() => Interlocked.Exchange(ref _pending, null);

        public void MarkDead()
        {
            _dead = true;
            Interlocked.MemoryBarrier();
        }

        /// <summary>Ends its socket: the child exits when it reads the end (after the task it may still run).</summary>
        public void Close()
        {
            try
            {
                socket.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Already gone.
            }
        }

        public void Kill()
        {
            _killed = true;
            try
            {
                process.Kill();
            }
            catch (Exception ex) when (ex is InvalidOperationException or Win32Exception)
            {
                // Already gone.
            }
        }
    }

    /// <summary>A child's stderr: passed on to this process's, and its last lines kept for a failed start's report.</summary>
    private sealed class OutputTail
    {
        private const int Lines = 8;
        private readonly Queue<string> _lines = new();

        public string Text
        {
            get
            {
                lock (_lines)
                {
                    return _lines.Count == 0 ? "(nothing)" : string.Join(" | ", _lines);
                }
            }
        }

        public void Add(string? line)
        {
            if (line is null)
            {
                return;
            }

            Console.Error.WriteLine(line);
            lock (_lines)
            {
                _lines.Enqueue(line.Length > 300 ? line[..300] + "..." : line);
                if (_lines.Count > Lines)
                {
                    _lines.Dequeue();
                }
            }
        }
    }
}
