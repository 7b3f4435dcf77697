using System.Threading.Channels;
using Celeriac.Concurrency;
using Celeriac.Diagnostics;
using Celeriac.Events;
using Celeriac.Protocol;
using Celeriac.Results;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;

namespace Celeriac.Worker;

/// <summary>The slots: each takes a request from the prefetch window, has the pool run it, and finishes it.</summary>
public sealed partial class CeleriacWorker
{
    private readonly Lock _slotGate = new();
    private readonly List<Task> _slots = [];
    private SlotContext? _slotContext;
    private Tuple<Task, TaskHeaders>? _lastEarlyAck;
    private int _slotTarget;
    private int _slotCount;

    /// <summary>Grows the pool by <paramref name="n"/> (Celery's <c>pool_grow</c>), up to <see cref="MaxConcurrency"/> raised to fit.</summary>
    public void GrowPool(int n = 1) => ResizePool(Concurrency + Math.Max(0, n), raiseMax: true);

    /// <summary>Shrinks the pool by <paramref name="n"/> (Celery's <c>pool_shrink</c>), to one at least; busy slots finish their task first.</summary>
    public void ShrinkPool(int n = 1) => ResizePool(Concurrency - Math.Max(0, n), raiseMax: false);

    /// <summary>Sets autoscale's bounds while the worker runs (Celery's <c>autoscale</c> command); false when the worker does not autoscale.</summary>
    public bool SetAutoscale(int max, int min)
    {
        if (_autoscaler is null || min < 1 || max < min)
        {
            return false;
        }

        _autoscaler.SetBounds(max, min);
        MaxConcurrency = Math.Max(MaxConcurrency, max);
        return true;
    }

    /// <summary>Requests waiting for a slot (prefetched, not scheduled).</summary>
    internal int ReservedCount => _registry.ReservedCount;

    /// <summary>Tasks running now.</summary>
    internal int ActiveCount => _registry.ActiveCount;

    internal void ResizePool(int size, bool raiseMax)
    {
        size = _pool.Name == PoolNames.Solo ? 1 : Math.Max(1, size);
        lock (_slotGate)
        {
            if (raiseMax && size > MaxConcurrency)
            {
                MaxConcurrency = size;
            }

            _pool.Resize(size);
            Volatile.Write(ref _slotTarget, _pool.Size);
        }

        StartSlots();
    }

    private void StartSlots()
    {
        lock (_slotGate)
        {
            if (_slotContext is not { } context)
            {
                return;
            }

            // Slots that retired when the pool shrank are done: only running ones are kept for the shutdown to wait on.
            _slots.RemoveAll(static slot => slot.IsCompleted);
            while (_slotCount < Volatile.Read(ref _slotTarget))
            {
                _slotCount++;
                _slots.Add(RunSlotAsync(context));
            }
        }
    }

    private Task AllSlots()
    {
        lock (_slotGate)
        {
            return Task.WhenAll(_slots);
        }
    }

    /// <summary>A slot above the target ends, so that the pool shrinks once its tasks are done.</summary>
    private bool Retire()
    {
        if (Volatile.Read(ref _slotCount) <= Volatile.Read(ref _slotTarget))
        {
            return false;
        }

        lock (_slotGate)
        {
            if (_slotCount <= _slotTarget)
            {
                return false;
            }

            _slotCount--;
            return true;
        }
    }

    private async Task RunSlotAsync(SlotContext slot)
    {
        ChannelReader<WorkerRequest> reader = slot.Window.Reader;
        try
        {
            while (await reader.WaitToReadAsync(slot.Stop).ConfigureAwait(false))
            {
                while (!slot.Stop.IsCancellationRequested)
                {
                    if (Retire())
                    {
                        return;
                    }

                    if (!reader.TryRead(out WorkerRequest? request))
                    {
                        break;
                    }

                    await HandleAsync(request, slot).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (slot.Stop.IsCancellationRequested)
        {
            // Warm shutdown: leftovers are returned by RunAsync.
        }
    }

    /// <summary>
    /// Decodes a request (bad input is settled here) and holds it when its ETA is ahead: false when it has been dealt
    /// with, true when it is to run now.
    /// </summary>
    private async ValueTask<bool> ReceiveAsync(WorkerRequest request, SlotContext slot)
    {
        if (!await _intake.DecodeAsync(request, slot.Abort).ConfigureAwait(false))
        {
            _registry.Release(request);
            return false;
        }

        WorkerTelemetry.Received(request, request.Message!, _app.MessagingSystem, _app.Time);
        if (_taskEvents is { } events)
        {
            OnReceived(events, request);
        }

        if (request.Message!.Headers.Eta is { } eta && eta > _app.Time.GetUtcNow())
        {
            // Held until due, outside the prefetch window; a warm stop returns it to the broker
            // like any other unstarted message.
            _registry.Schedule(request, eta);
            request.Delivery.Defer();
            Track(_timers, DelayThenQueueAsync(request, eta, slot.Window.Writer, slot.Stop));
            return false;
        }

        return true;
    }

    /// <summary>
    /// Whether a delivery's headers give an ETA (protocol 2): the consumer schedules such a request as it takes it, as
    /// Celery's consumer does, so that <c>inspect scheduled</c> lists it at once even while every slot is busy.
    /// </summary>
    private static bool HasEta(Delivery delivery) =>
        delivery.Message is { } message && message.Headers.TryGetValue("eta", out object? eta) && eta is not null;

    private async ValueTask HandleAsync(WorkerRequest request, SlotContext slot)
    {
        if (request.Message is null && !await ReceiveAsync(request, slot).ConfigureAwait(false))
        {
            return;
        }

        if (HoldForRateLimit(request, slot.Window.Writer, slot.Stop))
        {
            return;
        }

        if (!request.Delivery.TryClaim())
        {
            // Withdrawn by the transport before it started: the broker has it again.
            _registry.Release(request);
            request.Message!.Dispose();
            return;
        }

        try
        {
            if (request.Message!.Headers.Retries > 0 && _registry.EarlierRun(request) is { } earlier)
            {
                // A retry sent by a run this worker is still finishing: run it once that run's RETRY is stored, or its
                // own outcome, stored first, would be overwritten by that RETRY and the task would never read as ready.
                await earlier.WaitAsync(slot.Abort).ConfigureAwait(false);
            }

            await ExecuteAsync(request, slot.Abort).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (slot.Abort.IsCancellationRequested)
        {
            // Cold shutdown cancelled the work around the task (a result's store, track_started; the task itself is
            // handled as a lost worker): a late-acked message goes back to the broker (an early-acked one is already
            // settled, so this does nothing).
            _registry.Release(request);
            await request.Delivery.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
            request.Message!.Dispose();
        }
        catch (Exception ex)
        {
            _registry.Release(request);
            if (request.Telemetry?.Span is { } span)
            {
                span.SetStatus(System.Diagnostics.ActivityStatusCode.Error, ex.Message);
                span.AddException(ex);
                span.Stop();
            }

            Log.InternalError(_logger, request.Message!.Headers.Task, request.Message.Headers.Id, ex);
            _app.Signals.OnTaskInternalError(this, new TaskSignalEventArgs { TaskId = request.Message.Headers.Id, TaskName = request.Message.Headers.Task, Queue = request.Delivery.Queue, Exception = ex });
            await request.Delivery.RejectAsync(requeue: false, CancellationToken.None).ConfigureAwait(false);
            request.Message.Dispose();
        }
        finally
        {
            Interlocked.Increment(ref _processed);

            // The slot is free: with prefetch off, only now may the transport take the next message.
            request.Delivery.Done();
        }
    }

    /// <summary>
    /// Runs one claimed request: skips it when revoked or expired, acks it early, has the pool run it, and finishes it.
    /// Once <see cref="FinishAsync"/> has begun it owns the message; an exception before then leaves it to the slot.
    /// </summary>
    private async ValueTask ExecuteAsync(WorkerRequest request, CancellationToken abort)
    {
        TaskMessage message = request.Message!;
        TaskHeaders h = message.Headers;
        CeleriacTask task = request.Task!;
        bool acksLate = task.Options.AcksLate ?? _app.Options.AcksLate;
        bool storeResult = !(h.IgnoreResult || task.Options.IgnoreResult);

        // The run span is current from here to the end of the post-run steps: what the task and the steps send is its child.
        WorkerTelemetry.StartRun(request, _app.MessagingSystem, _node);

        if (_revoked.Contains(h.Id))
        {
            Log.TaskRevoked(_logger, h.Task, h.Id);
            await FinishAsync(request, acksLate, storeResult, TaskOutcome.Revoked("revoked"), abort).ConfigureAwait(false);
            return;
        }

        if (h.Expires is { } expires && expires <= _app.Time.GetUtcNow())
        {
            Log.TaskExpired(_logger, h.Task, h.Id, CeleryJson.FormatIso(expires));
            await FinishAsync(request, acksLate, storeResult, TaskOutcome.Revoked("expired"), abort).ConfigureAwait(false);
            return;
        }

        if (!acksLate)
        {
            // Early ack: the message leaves the broker as the task starts. The task does not wait for the broker's
            // answer (a round trip per task on a networked broker); the worker waits for it before it stops.
            // Nothing waits on each ack (a continuation per task is a thread hand-off per task): the latest is kept for
            // the shutdown, and the transport sends its acks in order and flushes them when it is disposed.
            ValueTask ack = request.Delivery.AckAsync(abort);
            if (!ack.IsCompletedSuccessfully)
            {
                Volatile.Write(ref _lastEarlyAck, Tuple.Create(ack.AsTask(), h));
            }
        }

        request.Delivery.Started();

        string queue = request.Delivery.Queue;
        if (storeResult && (task.Options.TrackStarted ?? _app.Options.TrackStarted))
        {
            byte[] started = TaskResultMeta.SerializeValue(new Dictionary<string, object?> { ["pid"] = (long)Environment.ProcessId, ["hostname"] = _node });
            await OwnThreadAsync(_store.StoreAsync(_documents.Meta(message, queue, TaskStates.Started, started, null, ready: false), abort)).ConfigureAwait(false);
        }

        // Cancelled by a cold stop or by a revoke with terminate=true.
        using var run = CancellationTokenSource.CreateLinkedTokenSource(abort);
        var running = new RunningTask(run, request, acksLate, storeResult);
        _registry.Activate(request, running, _app.Time.GetUtcNow());
        WorkerTelemetry.Started(request, _app.Time);
        CountAccepted(h.Task);
        if (_taskEvents is { } events)
        {
            TaskEvents.Started(events, h.Id);
        }

        TimeLimits limits = TimeLimitsOf(task, h);
        request.PrepareRun(limits.SoftSeconds, limits.HardSeconds, storeResult || message.HasWorkflow || _taskEvents is not null || _logger.IsEnabled(LogLevel.Information), abort);
        TaskOutcome outcome;
        try
        {
            outcome = await _pool.RunAsync(request, run.Token).ConfigureAwait(false);
        }
        finally
        {
            _registry.Deactivate(request);
        }

        if (running.AbandonedBeforeItFinished() is { } abandoned)
        {
            // A shutdown gave up on it and has settled it as lost: what it did after that is discarded.
            await abandoned.ConfigureAwait(false);
            return;
        }

        if (running.Terminated)
        {
            // Celery's terminate: whatever the task did once told to stop, it ends REVOKED.
            Log.TaskTerminated(_logger, h.Task, h.Id);
            outcome = TaskOutcome.Revoked("terminated");
        }

        await FinishAsync(request, acksLate, storeResult, outcome, abort).ConfigureAwait(false);
    }

    /// <summary>Runs a request's task in this process (the in-process pools call this through <see cref="PoolJob.RunAsync"/>).</summary>
    internal ValueTask<TaskOutcome> RunHereAsync(WorkerRequest request, CancellationToken ct)
    {
        // A pool thread of its own (-P threads) does not flow the slot's context: the run span is made current here, so
        // that what the task sends is its child; and cleared, so that a thread's next task does not inherit it.
        System.Diagnostics.Activity? span = request.Telemetry?.Span;
        if (System.Diagnostics.Activity.Current != span)
        {
            System.Diagnostics.Activity.Current = span;
        }

        return _runner.RunAsync(request.Message!, request.Task!, request.Delivery.Queue, request.ResultJson, request, ct, request.Abort);
    }

    /// <summary>Stores a state a running task reports (Celery's <c>update_state</c>).</summary>
    internal ValueTask StoreStateAsync(WorkerRequest request, string state, object? meta, CancellationToken ct) =>
        _app.ResultBackend.StoreAsync(_documents.State(request.Message!, request.Delivery.Queue, state, meta), ct);

    /// <summary>
    /// Logs the outcome, raises the signals the run could not, runs the post-run steps and settles the message; then the
    /// message is released. Steps that do not finish at once (SQLite's group commit) do not hold the slot: it takes its
    /// next task while they finish, up to a window's worth at once.
    /// </summary>
    private async ValueTask FinishAsync(WorkerRequest request, bool acksLate, bool storeResult, TaskOutcome outcome, CancellationToken abort)
    {
        TaskMessage message = request.Message!;
        CeleriacTask task = request.Task!;
        if (_softShutdownCut && outcome.Kind == TaskOutcomeKind.WorkerLost)
        {
            outcome = new TaskOutcome { Kind = TaskOutcomeKind.ShutdownCut, Reason = outcome.Reason };
        }

        Settlement settlement = Settle(outcome, acksLate, task);
        Report(request, outcome, settlement);
        var finished = new FinishedTask
        {
            Message = message,
            Queue = request.Delivery.Queue,
            Outcome = outcome,
            StoreResult = storeResult,
            StoreErrors = task.Options.StoreErrorsEvenIfIgnored,
            Settlement = settlement,
            Hostname = _node,
            Telemetry = request.Telemetry,
        };

        // A worker going down has fired its abort token already: the store gets a few seconds instead.
        bool lost = outcome.Kind is TaskOutcomeKind.WorkerLost or TaskOutcomeKind.ShutdownCut;
        using CancellationTokenSource? patience = lost ? new CancellationTokenSource(TimeSpan.FromSeconds(5), _app.Time) : null;
        CancellationToken ct = patience?.Token ?? abort;
        ValueTask steps = RunStepsAsync(finished, ct);
        if (steps.IsCompletedSuccessfully || lost)
        {
            await OwnThreadAsync(CompleteAsync(steps, request, settlement, lost ? CancellationToken.None : abort)).ConfigureAwait(false);
            return;
        }

        if (Interlocked.Increment(ref _pendingWrites) > _prefetch)
        {
            await OwnThreadAsync(new ValueTask(CompleteInBackgroundAsync(steps, request, settlement, abort))).ConfigureAwait(false);
            return;
        }

        Track(_writes, CompleteInBackgroundAsync(steps, request, settlement, abort));
    }

    /// <summary>
    /// Awaits what the slot must wait for, and when that did not complete at once, goes on on a thread of its own: stores
    /// complete their waiters a batch at a time on one thread, and a slot that went on there would run its next task
    /// there, holding up the rest of the batch.
    /// </summary>
    private static ValueTask OwnThreadAsync(ValueTask pending) => pending.IsCompletedSuccessfully ? pending : YieldAfterAsync(pending);

    private static async ValueTask YieldAfterAsync(ValueTask pending)
    {
        await pending.ConfigureAwait(false);
        await Task.Yield();
    }

    private async ValueTask RunStepsAsync(FinishedTask finished, CancellationToken ct)
    {
        foreach (IPostRunStep step in _steps)
        {
            ValueTask run;
            try
            {
                run = step.AfterRunAsync(finished, ct);
                if (run.IsCompletedSuccessfully)
                {
                    continue;
                }

                await run.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.StepFailed(_logger, step.GetType().Name, finished.Name, finished.Id, ex);
            }
        }
    }

    private async ValueTask CompleteAsync(ValueTask steps, WorkerRequest request, Settlement settlement, CancellationToken ct)
    {
        try
        {
            await steps.ConfigureAwait(false);
            await SettleAsync(request, settlement, ct).ConfigureAwait(false);
        }
        finally
        {
            _registry.Release(request);
            request.Message!.Dispose();
        }
    }

    private async Task CompleteInBackgroundAsync(ValueTask steps, WorkerRequest request, Settlement settlement, CancellationToken abort)
    {
        try
        {
            await CompleteAsync(steps, request, settlement, abort).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            // Cold shutdown before the result was stored: a late-acked message goes back to the broker.
            await request.Delivery.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _pendingWrites);
        }
    }

    private static ValueTask SettleAsync(WorkerRequest request, Settlement settlement, CancellationToken ct) => settlement switch
    {
        Settlement.Ack => request.Delivery.AckAsync(ct),
        Settlement.Reject => request.Delivery.RejectAsync(requeue: false, ct),
        Settlement.Requeue => request.Delivery.RejectAsync(requeue: true, ct),
        _ => ValueTask.CompletedTask,
    };

    /// <summary>
    /// How the message is settled after an outcome, as Celery does: a late-acked task is acked once it ran, or after a
    /// failure or time limit acked (<c>task_acks_on_failure_or_timeout</c>) or else rejected without requeue; a lost one
    /// goes back with <c>reject_on_worker_lost</c>; one cut off by a soft shutdown always goes back. <c>Reject</c> is
    /// honoured whatever the ack mode.
    /// </summary>
    private Settlement Settle(TaskOutcome outcome, bool acksLate, CeleriacTask task)
    {
        if (outcome.Kind == TaskOutcomeKind.Rejected)
        {
            return outcome.Requeue ? Settlement.Requeue : Settlement.Reject;
        }

        if (outcome.Kind == TaskOutcomeKind.Revoked)
        {
            return Settlement.Ack;
        }

        if (!acksLate)
        {
            return Settlement.None;
        }

        bool afterFailureAck = task.Options.AcksOnFailureOrTimeout ?? _app.Options.AcksOnFailureOrTimeout;
        return outcome.Kind switch
        {
            TaskOutcomeKind.Failed or TaskOutcomeKind.TimeLimitExceeded => afterFailureAck ? Settlement.Ack : Settlement.Reject,
            TaskOutcomeKind.WorkerLost when task.Options.RejectOnWorkerLost ?? _app.Options.RejectOnWorkerLost => Settlement.Requeue,
            TaskOutcomeKind.WorkerLost => afterFailureAck ? Settlement.Ack : Settlement.Reject,
            TaskOutcomeKind.ShutdownCut => Settlement.Requeue,
            _ => Settlement.Ack,
        };
    }

    /// <summary>Logs the outcome (Celery's lines) and raises the signals that the run itself could not (a time limit, a revoke).</summary>
    private void Report(WorkerRequest request, TaskOutcome outcome, Settlement settlement)
    {
        TaskHeaders h = request.Message!.Headers;
        string queue = request.Delivery.Queue;
        CeleriacSignals signals = _app.Signals;
        switch (outcome.Kind)
        {
            case TaskOutcomeKind.Succeeded when _logger.IsEnabled(LogLevel.Information):
                Log.TaskSucceeded(_logger, h.Task, h.Id, outcome.Runtime.ToString("0.000###", System.Globalization.CultureInfo.InvariantCulture), Shorten(outcome.Result));
                break;
            case TaskOutcomeKind.Failed or TaskOutcomeKind.TimeLimitExceeded:
                Log.TaskFailed(_logger, h.Task, h.Id, outcome.ErrorType ?? "", outcome.ErrorMessage ?? "", outcome.LogStack ? outcome.Exception : null);
                if (!outcome.SignalsRaised && signals.HasTaskHandlers)
                {
                    var done = new TaskSignalEventArgs
                    {
                        TaskId = h.Id, TaskName = h.Task, Queue = queue, State = TaskStates.Failure,
                        Exception = outcome.Exception ?? new TimeLimitExceededException(outcome.Runtime),
                    };
                    signals.OnTaskFailure(this, done);
                    signals.OnTaskPostrun(this, done);
                }

                break;
            case TaskOutcomeKind.Retried:
                Log.TaskRetry(_logger, h.Task, h.Id, outcome.Reason ?? "");
                break;
            case TaskOutcomeKind.Rejected:
                Log.TaskRejected(_logger, h.Task, h.Id, outcome.Requeue, outcome.Reason ?? "");
                break;
            case TaskOutcomeKind.Revoked:
                signals.OnTaskRevoked(this, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, State = TaskStates.Revoked, Reason = outcome.Reason });
                break;
            case TaskOutcomeKind.WorkerLost:
                Log.TaskLost(_logger, h.Task, h.Id, settlement == Settlement.Requeue ? "returned to the queue" : "stored as FAILURE (WorkerLostError)");
                break;
            case TaskOutcomeKind.ShutdownCut:
                Log.TaskCut(_logger, h.Task, h.Id, settlement == Settlement.Requeue ? "returned to the queue" : "stored as FAILURE (WorkerLostError)");
                break;
            default:
                break;
        }
    }

    /// <summary>Waits for the latest early ack at shutdown; a failure means the broker delivers the message again.</summary>
    private async Task AwaitLastAckAsync()
    {
        if (Volatile.Read(ref _lastEarlyAck) is not { Item1: Task ack, Item2: TaskHeaders h })
        {
            return;
        }

        try
        {
            await ack.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Not acked: the broker gives the message again later, so the task may run twice, never zero times.
            Log.AckFailed(_logger, h.Task, h.Id, e);
        }
    }

    private static string Shorten(byte[]? json)
    {
        if (json is null)
        {
            return "None";
        }

        string s = System.Text.Encoding.UTF8.GetString(json, 0, Math.Min(json.Length, 200));
        return json.Length > 200 ? s + "..." : s;
    }

    /// <summary>What every slot shares: the window, and the warm and cold stop tokens.</summary>
    private sealed record SlotContext(Channel<WorkerRequest> Window, CancellationToken Stop, CancellationToken Abort);
}
