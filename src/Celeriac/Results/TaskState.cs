namespace Celeriac;

/// <summary>
/// A task's state as a value to switch on. On the wire and in stored results states stay Celery's strings
/// (<see cref="TaskStates"/>); <see cref="TaskStates.Parse"/> and <see cref="TaskStateExtensions.ToWireName"/> convert.
/// A state Celery does not define (a task's own <c>"PROGRESS"</c>) is <see cref="Custom"/>: its name is still in the
/// string <c>State</c>/<c>Status</c>.
/// </summary>
public enum TaskState
{
    /// <summary>PENDING: not known to the backend (waiting, or an unknown id).</summary>
    Pending,

    /// <summary>RECEIVED: taken by a worker.</summary>
    Received,

    /// <summary>STARTED: running (stored only when tracking is on).</summary>
    Started,

    /// <summary>SUCCESS: finished with a result.</summary>
    Success,

    /// <summary>FAILURE: finished with an error.</summary>
    Failure,

    /// <summary>RETRY: waiting to be retried.</summary>
    Retry,

    /// <summary>REVOKED: will not run.</summary>
    Revoked,

    /// <summary>REJECTED: refused by the worker (events only; never stored by Celery).</summary>
    Rejected,

    /// <summary>IGNORED: ran and stored nothing on purpose (events only).</summary>
    Ignored,

    /// <summary>A state of the task's own (<c>update_state(state="PROGRESS")</c>); read its name from the string state.</summary>
    Custom,
}

/// <summary>Conversions of <see cref="TaskState"/> to Celery's names.</summary>
public static class TaskStateExtensions
{
    /// <summary>Celery's name of a state (<c>"SUCCESS"</c>); <see cref="TaskState.Custom"/> has none and throws.</summary>
    public static string ToWireName(this TaskState state) => state switch
    {
        TaskState.Pending => TaskStates.Pending,
        TaskState.Received => TaskStates.Received,
        TaskState.Started => TaskStates.Started,
        TaskState.Success => TaskStates.Success,
        TaskState.Failure => TaskStates.Failure,
        TaskState.Retry => TaskStates.Retry,
        TaskState.Revoked => TaskStates.Revoked,
        TaskState.Rejected => TaskStates.Rejected,
        TaskState.Ignored => TaskStates.Ignored,
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "a custom state has no Celery name of its own: use the string state"),
    };

    /// <summary>Whether a state is final (SUCCESS, FAILURE, REVOKED), as Celery's <c>READY_STATES</c>.</summary>
    public static bool IsReady(this TaskState state) => state is TaskState.Success or TaskState.Failure or TaskState.Revoked;
}
