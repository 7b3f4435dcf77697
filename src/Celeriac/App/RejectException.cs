namespace Celeriac;

/// <summary>
/// Thrown by a task to reject its own message (Celery's <c>Reject</c>): no state is stored, and the message is
/// dropped (dead-lettered where the queue has a dead-letter exchange) or, with <see cref="Requeue"/>, given back to
/// the broker for another try. Only a late-acked task's message can still be rejected; an early-acked one is gone.
/// </summary>
public sealed class RejectException : Exception
{
    /// <summary>Rejects the message, dropping it.</summary>
    public RejectException()
        : this("rejected by the task")
    {
    }

    /// <summary>Rejects the message with a reason for the log, dropping it.</summary>
    public RejectException(string reason)
        : base(reason)
    {
    }

    /// <summary>Rejects the message with a reason; <paramref name="requeue"/> gives it back to the broker.</summary>
    public RejectException(string reason, bool requeue)
        : base(reason) => Requeue = requeue;

    /// <summary>Rejects the message with a reason and an inner exception, dropping it.</summary>
    public RejectException(string reason, Exception innerException)
        : base(reason, innerException)
    {
    }

    /// <summary>Whether the message goes back to the broker.</summary>
    public bool Requeue { get; }
}
