using System.Collections.Concurrent;
using System.Diagnostics;
using Celeriac.Protocol;
using Celeriac.Results;
using Celeriac.Transport;
using Celeriac.Worker;

namespace Celeriac.Testing;

/// <summary>
/// Runs an app's tasks in a user's test with no broker and no sleeps (after MassTransit's <c>ITestHarness</c>):
/// <code>
/// await using var harness = new CeleriacTestHarness(app);
/// await add.DelayAsync(2, 3);
/// Assert.True(await harness.Succeeded.Any(add, t =&gt; t.Result&lt;int&gt;() == 5));
/// </code>
/// It points the app at an in-memory broker and result store of its own (whatever URLs it had), puts it on fake time
/// (<see cref="Time"/>), and runs a worker in this process. While a task waits for time (an ETA, a countdown, a retry's
/// delay, a rate limit) and nothing else happens, the harness moves fake time straight to when it is due, so a task
/// due in an hour runs now. Create it after registering the tasks and before the app's first send.
/// </summary>
public sealed class CeleriacTestHarness : IAsyncDisposable
{
    private const string Scheme = "celeriac-harness";
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset?> _outstanding = new(StringComparer.Ordinal);
    private readonly Task _run;
    private readonly Task _clock;
    private TaskCompletionSource _activity = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastActivity = Stopwatch.GetTimestamp();
    private long _version;

    /// <summary>Takes over <paramref name="app"/> for a test: in-memory broker and results, fake time, a worker here.</summary>
    public CeleriacTestHarness(CeleriacApp app, HarnessTimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(app);
        App = app;
        Time = time ?? new HarnessTimeProvider(TimeProvider.System.GetUtcNow());
        Sent = new ObservedTasks(this);
        Received = new ObservedTasks(this);
        Succeeded = new ObservedTasks(this);
        Failed = new ObservedTasks(this);
        Retried = new ObservedTasks(this);
        Revoked = new ObservedTasks(this);

        // A store of its own per harness, so that tests running in parallel never see each other's tasks.
        string name = "harness-" + Guid.NewGuid().ToString("N");
        app.Providers.AddTransport(Scheme, o => new HarnessTransport(new MemoryTransport(o.Url), this));
        app.Providers.AddResultBackend(Scheme, static o => new MemoryResultBackend(o));
        CeleriacOptions o = app.Options;
        o.BrokerUrl = $"{Scheme}://{name}";
        o.ResultBackend = $"{Scheme}://{name}";
        o.TimeProvider = Time;
        o.WithoutHeartbeat = true;
        o.TaskEvents = false;
        if (o.Concurrency < 1)
        {
            o.Concurrency = 4;
        }

        // An app that already sent holds its connection: the harness could not see or run what it sends. Say so now.
        if (app.Transport is not HarnessTransport)
        {
            throw new InvalidOperationException("The test harness must be created before the app's first send or worker start: this app already has a broker connection. Create the harness right after registering the tasks.");
        }

        // The worker serves every queue the app's tasks go to (their own queues and the routes), not only the default.
        foreach (string queue in QueuesOf(app))
        {
            if (!o.Queues.Contains(queue))
            {
                o.Queues.Add(queue);
            }
        }

        Subscribe(app.Signals);
        Worker = new CeleriacWorker(app);
        _run = Task.Run(() => Worker.RunAsync(_stop.Token));
        _clock = Task.Run(() => AdvanceWhenIdleAsync(_stop.Token));
    }

    private static IEnumerable<string> QueuesOf(CeleriacApp app)
    {
        yield return app.Options.DefaultQueue;
        foreach (string name in app.Tasks.Names)
        {
            if (app.Tasks.TryGet(name, out CeleriacTask? task) && task.Options.Queue is { Length: > 0 } own)
            {
                yield return own;
            }
        }

        foreach (string routed in app.Options.TaskRoutes.Values)
        {
            yield return routed;
        }
    }

    /// <summary>The app under test.</summary>
    public CeleriacApp App { get; }

    /// <summary>The app's clock: fake, moved by the harness when only time is left to wait for (or by you).</summary>
    public HarnessTimeProvider Time { get; }

    /// <summary>The worker running the app's tasks in this process.</summary>
    public CeleriacWorker Worker { get; }

    /// <summary>Task messages published (calls, chain steps, chord bodies, callbacks, retries), as sent.</summary>
    public ObservedTasks Sent { get; }

    /// <summary>Tasks that started to run (Celery's <c>task_prerun</c>).</summary>
    public ObservedTasks Received { get; }

    /// <summary>Tasks that returned (<see cref="HarnessTask.Value"/>, <see cref="HarnessTask.Result{T}"/>).</summary>
    public ObservedTasks Succeeded { get; }

    /// <summary>Tasks that failed (<see cref="HarnessTask.Exception"/>).</summary>
    public ObservedTasks Failed { get; }

    /// <summary>Tasks that asked to be retried (<see cref="HarnessTask.Exception"/> is the reason).</summary>
    public ObservedTasks Retried { get; }

    /// <summary>Tasks that were revoked or expired instead of running (<see cref="HarnessTask.Reason"/>).</summary>
    public ObservedTasks Revoked { get; }

    /// <summary>
    /// How long nothing may happen (real time, with no task running) before a wait decides nothing more will.
    /// <value>1 second</value>
    /// </summary>
    public TimeSpan InactivityTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest any one wait lasts (real time), however busy the harness is. <value>30 seconds</value></summary>
    public TimeSpan TestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Whether the harness moves fake time on by itself when tasks wait only for it. Off, move it with
    /// <see cref="AdvanceAsync"/>. <value>true</value>
    /// </summary>
    public bool AutoAdvance { get; set; } = true;

    /// <summary>How long (real time) everything must be still before the harness moves time. <value>20 ms</value></summary>
    public TimeSpan QuietPeriod { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Completes when the worker consumes.</summary>
    public Task Ready => Worker.Ready;

    /// <summary>Tasks sent and not yet finished (succeeded, failed, revoked or rejected).</summary>
    public int Outstanding => _outstanding.Count;

    /// <summary>Moves fake time on by <paramref name="by"/>, firing what falls due, and lets the worker act on it.</summary>
    public async Task AdvanceAsync(TimeSpan by, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        await Ready.WaitAsync(TestTimeout, ct).ConfigureAwait(false);
        Time.Advance(by);
        MarkActivity();
    }

    /// <summary>
    /// Waits until nothing is left to do: every task sent has finished and the harness has been inactive (see
    /// <see cref="InactivityTimeout"/>). Returns <see langword="false"/> when work is still outstanding at
    /// <see cref="TestTimeout"/> or when inactivity leaves tasks unfinished (e.g. with <see cref="AutoAdvance"/> off).
    /// </summary>
    public async Task<bool> IdleAsync(CancellationToken ct = default)
    {
        long deadline = Deadline();
        while (await WaitForActivityAsync(Version, deadline, ct).ConfigureAwait(false))
        {
        }

        return _outstanding.IsEmpty;
    }

    internal long Version => Interlocked.Read(ref _version);

    internal long Deadline() => Stopwatch.GetTimestamp() + (long)(TestTimeout.TotalSeconds * Stopwatch.Frequency);

    internal void MarkActivity()
    {
        Interlocked.Exchange(ref _lastActivity, Stopwatch.GetTimestamp());
        Interlocked.Increment(ref _version);
        Interlocked.Exchange(ref _activity, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>Whether the worker holds a task that is running or about to (not one waiting for time).</summary>
    private bool WorkerBusy() =>
        Worker.GetRequests(RequestState.Active).Count > 0 || Worker.GetRequests(RequestState.Reserved).Count > 0;

    /// <summary>
    /// Whether a task's ETA has come while the worker still holds it as scheduled: its timer fired, and the worker's
    /// continuation may still be waiting for a thread-pool thread (seconds, on a loaded machine).
    /// </summary>
    private bool EtaCame()
    {
        DateTimeOffset now = Time.GetUtcNow();
        return Worker.GetRequests(RequestState.Scheduled).Any(r => r.Eta is { } eta && eta <= now);
    }

    private bool Inactive() =>
        Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastActivity)) >= InactivityTimeout && !WorkerBusy() && !EtaCame();

    /// <summary>
    /// Waits for activity after <paramref name="seen"/>: true when something happened, false once inactive or past
    /// <paramref name="deadline"/>. Polls the worker's state every 50 ms at most, as running tasks raise nothing.
    /// </summary>
    internal async Task<bool> WaitForActivityAsync(long seen, long deadline, CancellationToken ct)
    {
        await Ready.WaitAsync(TestTimeout, ct).ConfigureAwait(false);
        while (true)
        {
            Task signal = Volatile.Read(ref _activity).Task;
            if (Version != seen)
            {
                return true;
            }

            long now = Stopwatch.GetTimestamp();
            if (now >= deadline || Inactive())
            {
                return false;
            }

            TimeSpan left = TimeSpan.FromSeconds((deadline - now) / (double)Stopwatch.Frequency);
            TimeSpan wait = TimeSpan.FromMilliseconds(Math.Clamp(Math.Min(left.TotalMilliseconds, 50), 1, 50));
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            Task delay = Task.Delay(wait, cts.Token);
            await Task.WhenAny(signal, delay).ConfigureAwait(false);
            await cts.CancelAsync().ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// Moves fake time to the next due point while tasks are outstanding and everything else is still: the earliest
    /// ETA of a task sent and not started, else the next one-shot timer (a rate limit's wait).
    /// </summary>
    private async Task AdvanceWhenIdleAsync(CancellationToken stop)
    {
        try
        {
            await Ready.WaitAsync(stop).ConfigureAwait(false);
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(5), stop).ConfigureAwait(false);
                if (!AutoAdvance || _outstanding.IsEmpty || WorkerBusy() ||
                    Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastActivity)) < QuietPeriod)
                {
                    continue;
                }

                DateTimeOffset now = Time.GetUtcNow();
                DateTimeOffset? next = null;
                foreach (DateTimeOffset? eta in _outstanding.Values)
                {
                    if (eta is { } due && due > now && (next is null || due < next))
                    {
                        next = due;
                    }
                }

                next ??= Time.NextOneShotDue();
                if (next is { } target && target > now)
                {
                    Time.SetUtcNow(target);
                    MarkActivity();
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    internal void OnSent(TaskMessage task, string queue)
    {
        TaskHeaders h = task.Headers;
        _outstanding[h.Id] = h.Eta;
        Sent.Add(Record(h, task.Args, task.Kwargs, queue));
    }

    private HarnessTask Record(TaskHeaders h, System.Text.Json.JsonElement args, System.Text.Json.JsonElement kwargs, string? queue,
        object? value = null, Exception? exception = null, string? reason = null) =>
        new(h.Id, h.Task, args.Clone(), kwargs.Clone())
        {
            Retries = h.Retries,
            Eta = h.Eta,
            Queue = queue,
            Value = value,
            Exception = exception,
            Reason = reason,
            At = Time.GetUtcNow(),
        };

    private HarnessTask Record(TaskSignalEventArgs e, object? value = null, Exception? exception = null, string? reason = null) =>
        e.Context is { } c
            ? Record(c.Headers, c.Args, c.Kwargs, e.Queue, value, exception, reason)
            : new HarnessTask(e.TaskId, e.TaskName, default, default) { Queue = e.Queue, Value = value, Exception = exception, Reason = reason, At = Time.GetUtcNow() };

    private void Finished(string taskId) => _outstanding.TryRemove(taskId, out _);

    private void Subscribe(CeleriacSignals signals)
    {
        signals.TaskPrerun += (_, e) =>
        {
            // Started: no longer waiting for its ETA (a retry's new one comes with its publish).
            if (_outstanding.ContainsKey(e.TaskId))
            {
                _outstanding[e.TaskId] = null;
            }

            Received.Add(Record(e));
        };
        signals.TaskSuccess += (_, e) =>
        {
            Finished(e.TaskId);
            Succeeded.Add(Record(e, value: e.Result));
        };
        signals.TaskFailure += (_, e) =>
        {
            Finished(e.TaskId);
            Failed.Add(Record(e, exception: e.Exception));
        };
        signals.TaskRetry += (_, e) => Retried.Add(Record(e, exception: e.Exception, reason: e.Reason));
        signals.TaskRevoked += (_, e) =>
        {
            Finished(e.TaskId);
            Revoked.Add(Record(e, reason: e.Reason));
        };
        signals.TaskRejected += (_, e) =>
        {
            Finished(e.TaskId);
            MarkActivity();
        };
        signals.TaskUnknown += (_, e) =>
        {
            Finished(e.TaskId);
            MarkActivity();
        };
        signals.TaskInternalError += (_, e) =>
        {
            Finished(e.TaskId);
            MarkActivity();
        };
    }

    /// <summary>Stops the worker (warm: running tasks finish) and the clock. The app is yours to dispose.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_run, _clock).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }
}
