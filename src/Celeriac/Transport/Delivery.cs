namespace Celeriac.Transport;

/// <summary>
/// A message taken from a queue and held by this consumer until it is settled. Settle it exactly once:
/// <see cref="AckAsync"/> removes it; <see cref="RejectAsync"/> drops it or gives it back to the queue.
/// Until then the transport keeps it alive for this consumer, so only a dead consumer's messages return.
/// </summary>
public abstract class Delivery
{
    private int _settled;
    private int _windowSlotFreed;

    /// <summary>Creates a delivery of a decoded message.</summary>
    protected Delivery(string queue, TransportMessage? message, string? decodeError, bool redelivered)
    {
        Queue = queue;
        Message = message;
        DecodeError = decodeError;
        Redelivered = redelivered;
    }

    /// <summary>The queue it came from.</summary>
    public string Queue { get; }

    /// <summary>The message, or <see langword="null"/> when the transport could not decode it (see <see cref="DecodeError"/>).</summary>
    public TransportMessage? Message { get; }

    /// <summary>Why the stored bytes could not be read as a message, or <see langword="null"/>.</summary>
    public string? DecodeError { get; }

    /// <summary>Whether it was delivered before and not acked.</summary>
    public bool Redelivered { get; }

    /// <summary>Whether it has been acked or rejected.</summary>
    public bool IsSettled => Volatile.Read(ref _settled) != 0;

    /// <summary>Removes the message from the broker. A second settle is ignored.</summary>
    public ValueTask AckAsync(CancellationToken ct = default) =>
        Interlocked.Exchange(ref _settled, 1) == 0 ? SettleAsync(requeue: null, ct) : ValueTask.CompletedTask;

    /// <summary>Drops the message, or with <paramref name="requeue"/> gives it back for another consumer.</summary>
    public ValueTask RejectAsync(bool requeue, CancellationToken ct = default) =>
        Interlocked.Exchange(ref _settled, 1) == 0 ? SettleAsync(requeue, ct) : ValueTask.CompletedTask;

    /// <summary>
    /// Says that this delivery will wait (an ETA or countdown in the worker's timer): the transport stops
    /// counting it against the consumer's prefetch window, so waiting tasks never starve immediate ones.
    /// It stays held (and kept alive) until it is settled.
    /// </summary>
    public void Defer() => OnDeferred();

    /// <summary>Frees the delivery's prefetch-window slot; the default has no window to free (AMQP's qos).</summary>
    protected virtual void OnDeferred()
    {
    }

    /// <summary>
    /// Whether the caller is the one to free this delivery's window slot: true once, whether deferral or
    /// settling comes first, so a slot is never freed twice nor kept.
    /// </summary>
    protected bool TryFreeWindowSlot() => Interlocked.Exchange(ref _windowSlotFreed, 1) == 0;

    /// <summary>Settles once: <paramref name="requeue"/> is <see langword="null"/> for an ack.</summary>
    protected abstract ValueTask SettleAsync(bool? requeue, CancellationToken ct);
}
