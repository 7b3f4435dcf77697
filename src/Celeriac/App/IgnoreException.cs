namespace Celeriac;

/// <summary>
/// Thrown by a task to end without a state (Celery's <c>Ignore</c>): nothing is stored, no callback runs, and the
/// message is acked. <see cref="TaskContext.ReplaceAsync"/> returns one to throw.
/// </summary>
public sealed class IgnoreException : Exception
{
    /// <summary>Ignores the task.</summary>
    public IgnoreException()
        : this("ignored by the task")
    {
    }

    /// <summary>Ignores the task with a reason for the log.</summary>
    public IgnoreException(string reason)
        : base(reason)
    {
    }

    /// <summary>Ignores the task with a reason and an inner exception.</summary>
    public IgnoreException(string reason, Exception innerException)
        : base(reason, innerException)
    {
    }
}
