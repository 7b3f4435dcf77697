using Celeriac.Transport;
using Microsoft.Extensions.Logging;

namespace Celeriac;

/// <summary>
/// Celery's signals as .NET events, on <see cref="CeleriacApp.Signals"/>: subscribe with <c>+=</c> before the worker
/// starts or the first send. Handlers run synchronously on the thread that raises them (keep them short); one that
/// throws is logged and the others still run, as in Celery.
/// </summary>
public sealed class CeleriacSignals
{
    private readonly Func<ILogger> _logger;

    internal CeleriacSignals(Func<ILogger> logger) => _logger = logger;

    /// <summary><c>before_task_publish</c>: a task message is about to be sent (the headers of <see cref="TaskSignalEventArgs.Message"/> may still be changed).</summary>
    public event EventHandler<TaskSignalEventArgs>? BeforeTaskPublish;

    /// <summary><c>after_task_publish</c>: the broker holds the message.</summary>
    public event EventHandler<TaskSignalEventArgs>? AfterTaskPublish;

    /// <summary><c>task_prerun</c>: a task is about to run (<see cref="TaskSignalEventArgs.Context"/> is set).</summary>
    public event EventHandler<TaskSignalEventArgs>? TaskPrerun;

    /// <summary><c>task_postrun</c>: a task ran, whatever its outcome (<see cref="TaskSignalEventArgs.State"/> says which).</summary>
    public event EventHandler<TaskSignalEventArgs>? TaskPostrun;

    /// <summary><c>task_success</c>: a task returned (<see cref="TaskSignalEventArgs.Result"/>).</summary>
    public event EventHandler<TaskSignalEventArgs>? TaskSuccess;

    /// <summary><c>task_failure</c>: a task threw (<see cref="TaskSignalEventArgs.Exception"/>).</summary>
    public event EventHandler<TaskSignalEventArgs>? TaskFailure;

    /// <summary><c>task_retry</c>: a task will be retried (<see cref="TaskSignalEventArgs.Reason"/>).</summary>
    public event EventHandler<TaskSignalEventArgs>? TaskRetry;

    /// <summary><c>task_revoked</c>: a task was revoked, expired or terminated (<see cref="TaskSignalEventArgs.Reason"/>).</summary>
    public event EventHandler<TaskSignalEventArgs>? TaskRevoked;

    /// <summary><c>task_unknown</c>: a message named a task this worker does not have.</summary>
    public event EventHandler<TaskSignalEventArgs>? TaskUnknown;

    /// <summary><c>task_rejected</c>: a message could not be read, or a task rejected its own message.</summary>
    public event EventHandler<TaskSignalEventArgs>? TaskRejected;

    /// <summary><c>task_internal_error</c>: the worker failed around a task (not the task itself).</summary>
    public event EventHandler<TaskSignalEventArgs>? TaskInternalError;

    /// <summary><c>worker_init</c>: a worker is starting, before it consumes.</summary>
    public event EventHandler<WorkerSignalEventArgs>? WorkerInit;

    /// <summary><c>worker_ready</c>: a worker consumes.</summary>
    public event EventHandler<WorkerSignalEventArgs>? WorkerReady;

    /// <summary><c>worker_shutdown</c>: a worker has stopped.</summary>
    public event EventHandler<WorkerSignalEventArgs>? WorkerShutdown;

    internal bool HasTaskHandlers => TaskPrerun is not null || TaskPostrun is not null || TaskSuccess is not null || TaskFailure is not null;

    internal void OnBeforeTaskPublish(object sender, TaskSignalEventArgs e) => Raise(BeforeTaskPublish, sender, e, "before_task_publish");

    internal void OnAfterTaskPublish(object sender, TaskSignalEventArgs e) => Raise(AfterTaskPublish, sender, e, "after_task_publish");

    internal void OnTaskPrerun(object sender, TaskSignalEventArgs e) => Raise(TaskPrerun, sender, e, "task_prerun");

    internal void OnTaskPostrun(object sender, TaskSignalEventArgs e) => Raise(TaskPostrun, sender, e, "task_postrun");

    internal void OnTaskSuccess(object sender, TaskSignalEventArgs e) => Raise(TaskSuccess, sender, e, "task_success");

    internal void OnTaskFailure(object sender, TaskSignalEventArgs e) => Raise(TaskFailure, sender, e, "task_failure");

    internal void OnTaskRetry(object sender, TaskSignalEventArgs e) => Raise(TaskRetry, sender, e, "task_retry");

    internal void OnTaskRevoked(object sender, TaskSignalEventArgs e) => Raise(TaskRevoked, sender, e, "task_revoked");

    internal void OnTaskUnknown(object sender, TaskSignalEventArgs e) => Raise(TaskUnknown, sender, e, "task_unknown");

    internal void OnTaskRejected(object sender, TaskSignalEventArgs e) => Raise(TaskRejected, sender, e, "task_rejected");

    internal void OnTaskInternalError(object sender, TaskSignalEventArgs e) => Raise(TaskInternalError, sender, e, "task_internal_error");

    internal void OnWorkerInit(object sender, WorkerSignalEventArgs e) => Raise(WorkerInit, sender, e, "worker_init");

    internal void OnWorkerReady(object sender, WorkerSignalEventArgs e) => Raise(WorkerReady, sender, e, "worker_ready");

    internal void OnWorkerShutdown(object sender, WorkerSignalEventArgs e) => Raise(WorkerShutdown, sender, e, "worker_shutdown");

    private void Raise<T>(EventHandler<T>? handlers, object sender, T e, string signal)
    {
        if (handlers is null)
        {
            return;
        }

        foreach (EventHandler<T> handler in handlers.GetInvocationList().Cast<EventHandler<T>>())
        {
            try
            {
                handler(sender, e);
            }
            catch (Exception error)
            {
                Diagnostics.Log.SignalHandlerFailed(_logger(), signal, error);
            }
        }
    }
}

/// <summary>What a task signal carries; which properties are set depends on the signal (see each event).</summary>
public sealed class TaskSignalEventArgs : EventArgs
{
    /// <summary>The task id.</summary>
    public required string TaskId { get; init; }

    /// <summary>The task name.</summary>
    public required string TaskName { get; init; }

    /// <summary>The queue it was sent to or taken from, when known.</summary>
    public string? Queue { get; init; }

    /// <summary>The message (publish signals, rejected messages).</summary>
    public TransportMessage? Message { get; init; }

    /// <summary>The running task's context (prerun, postrun, success, failure, retry).</summary>
    public TaskContext? Context { get; init; }

    /// <summary>The final state (postrun), or the state stored (revoked: REVOKED).</summary>
    public string? State { get; init; }

    /// <summary>The value the task returned (success, postrun).</summary>
    public object? Result { get; init; }

    /// <summary>The exception (failure, retry, internal error, rejected).</summary>
    public Exception? Exception { get; init; }

    /// <summary>Why: "revoked", "expired", "terminated" (revoked), the retry's reason, an unreadable message's error.</summary>
    public string? Reason { get; init; }
}

/// <summary>What a worker signal carries.</summary>
public sealed class WorkerSignalEventArgs(IWorkerInfo worker) : EventArgs
{
    /// <summary>The worker (the sender is the worker itself, for anything <see cref="IWorkerInfo"/> does not have).</summary>
    public IWorkerInfo Worker { get; } = worker;
}
