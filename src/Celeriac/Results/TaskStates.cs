namespace Celeriac;

/// <summary>Celery's task states, with their exact names.</summary>
public static class TaskStates
{
    /// <summary>Not known to the backend: waiting, or an unknown id.</summary>
    public const string Pending = "PENDING";

    /// <summary>Received by a worker.</summary>
    public const string Received = "RECEIVED";

    /// <summary>Started by a worker (stored only when tracking is on).</summary>
    public const string Started = "STARTED";

    /// <summary>Finished with a result.</summary>
    public const string Success = "SUCCESS";

    /// <summary>Finished with an error.</summary>
    public const string Failure = "FAILURE";

    /// <summary>Waiting to be retried.</summary>
    public const string Retry = "RETRY";

    /// <summary>Revoked: will not run.</summary>
    public const string Revoked = "REVOKED";

    /// <summary>Refused by a worker (events only).</summary>
    public const string Rejected = "REJECTED";

    /// <summary>Ran and stored nothing on purpose (events only).</summary>
    public const string Ignored = "IGNORED";

    /// <summary>
    /// The <see cref="TaskState"/> of one of Celery's state names (exact, upper case as on the wire); any other name
    /// is <see cref="TaskState.Custom"/>.
    /// </summary>
    public static TaskState Parse(string? state) => state switch
    {
        null or Pending => TaskState.Pending,
        Received => TaskState.Received,
        Started => TaskState.Started,
        Success => TaskState.Success,
        Failure => TaskState.Failure,
        Retry => TaskState.Retry,
        Revoked => TaskState.Revoked,
        Rejected => TaskState.Rejected,
        Ignored => TaskState.Ignored,
        _ => TaskState.Custom,
    };

    /// <summary>Whether a state is final (SUCCESS, FAILURE, REVOKED).</summary>
    public static bool IsReady(string state) => state is Success or Failure or Revoked;

    /// <summary>Whether a state carries an exception (FAILURE, RETRY, REVOKED).</summary>
    public static bool IsException(string state) => state is Failure or Retry or Revoked;
}
