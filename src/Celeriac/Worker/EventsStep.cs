using Celeriac.Concurrency;
using Celeriac.Events;

namespace Celeriac.Worker;

/// <summary>
/// The last post-run step; while task events are on (<c>-E</c>, <c>enable_events</c>) it sends the outcome as Celery's
/// request reports it, after the result is stored and the canvas has acted: <c>task-succeeded</c> (result repr, runtime), <c>task-failed</c>
/// (exception repr, traceback), <c>task-retried</c>, <c>task-revoked</c> (terminated, signum, expired) or
/// <c>task-rejected</c> (requeue). An ignored task sends nothing, as Celery's.
/// </summary>
internal sealed class EventsStep(Func<EventDispatcher?> taskEvents) : IPostRunStep
{
    public int Order => 20;

    public ValueTask AfterRunAsync(FinishedTask task, CancellationToken ct)
    {
        if (taskEvents() is not { } events)
        {
            return ValueTask.CompletedTask;
        }

        TaskOutcome o = task.Outcome;
        string id = task.Id;
        switch (o.Kind)
        {
            case TaskOutcomeKind.Succeeded:
                TaskEvents.Succeeded(events, id, o.Result, o.Runtime);
                break;
            case TaskOutcomeKind.Failed or TaskOutcomeKind.TimeLimitExceeded:
                TaskEvents.Failed(events, "task-failed", id, TaskEvents.ExceptionRepr(o.Result), o.Traceback);
                break;
            case TaskOutcomeKind.Retried:
                TaskEvents.Failed(events, "task-retried", id, TaskEvents.ExceptionRepr(o.Result), o.Traceback);
                break;
            case TaskOutcomeKind.Revoked:
                TaskEvents.Revoked(events, id, terminated: o.Reason == "terminated", expired: o.Reason == "expired");
                break;
            case TaskOutcomeKind.Rejected:
                TaskEvents.Rejected(events, id, o.Requeue);
                break;

            // Celery's reject_on_worker_lost: the message goes back and the worker says so instead of failing it.
            case TaskOutcomeKind.WorkerLost or TaskOutcomeKind.ShutdownCut when task.Settlement == Settlement.Requeue:
                TaskEvents.Rejected(events, id, requeue: true);
                break;
            case TaskOutcomeKind.WorkerLost or TaskOutcomeKind.ShutdownCut:
                TaskEvents.Failed(events, "task-failed", id, ResultDocuments.WorkerLost(o.Reason).ToPythonRepr(), null);
                break;
            default:
                break;
        }

        return ValueTask.CompletedTask;
    }
}
