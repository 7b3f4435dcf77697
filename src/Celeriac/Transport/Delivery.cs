namespace Celeriac.Transport;

/// <summary>
/// A message taken from a queue and held by this consumer until it is settled. Settle it exactly once:
/// <see cref="AckAsync"/> removes it; <see cref="RejectAsync"/> drops it or gives it back to the queue.
/// Until then the transport keeps it alive for this consumer, so only a dead consumer's messages return.
/// </summary>
public abstract class Delivery
{
    // Who owns the delivery: the transport hands it out Fresh; the worker defers it (an ETA) and claims it when it
    // starts the task; until claimed, the transport may withdraw it (the broker gives the message to someone else).
    private const int Fresh = 0;
    private const int Waiting = 1;
    private const int Claimed = 2;
    private const int Withdrawn = 3;

    private readonly PrefetchWindow? _window;
    private CancellationTokenSource? _withdrawn;
    private int _settled;
    private int _windowSlotFreed;
    private int _inReserve;
    private int _state;
    private int _wasDeferred;

    /// <summary>
    /// Creates a delivery. A transport that counts its prefetch with a <see cref="PrefetchWindow"/> passes it,
    /// and the delivery frees its slot once: when it is deferred or when it has been settled (with prefetch off, a
    /// claimed one when it is <see cref="Done"/>).
    /// </summary>
    protected Delivery(string queue, TransportMessage? message, string? decodeError, bool redelivered, PrefetchWindow? window = null)
    {
        Queue = queue;
        Message = message;
        DecodeError = decodeError;
        Redelivered = redelivered;
        _window = window;
        if (window is not null)
        {
            _inReserve = 1;
            window.EnterReserve();
        }
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
        Interlocked.Exchange(ref _settled, 1) == 0 ? SettleThenFreeSlot(requeue: null, ct) : ValueTask.CompletedTask;

    /// <summary>Drops the message, or with <paramref name="requeue"/> gives it back for another consumer.</summary>
    public ValueTask RejectAsync(bool requeue, CancellationToken ct = default) =>
        Interlocked.Exchange(ref _settled, 1) == 0 ? SettleThenFreeSlot(requeue, ct) : ValueTask.CompletedTask;

    /// <summary>
    /// Says that this delivery will wait (an ETA or countdown in the worker's timer): it stops counting against
    /// the consumer's prefetch window, so waiting tasks never starve immediate ones. It stays held (and kept
    /// alive) until it is settled. Transports without a <see cref="PrefetchWindow"/> (AMQP's qos) have nothing to free.
    /// </summary>
    public void Defer()
    {
        FreeWindowSlot();
        if (Interlocked.CompareExchange(ref _state, Waiting, Fresh) == Fresh)
        {
            Volatile.Write(ref _wasDeferred, 1);
            OnDeferred();
        }
    }

    /// <summary>
    /// Says that the worker has started the delivery's task (after an early ack, or holding it until the task ends with
    /// late acks): it no longer waits to be started, so the consumer may refill the window around it
    /// (see <see cref="PrefetchWindow"/>). Settling, deferring or withdrawing a delivery says so too.
    /// </summary>
    public void Started() => LeaveReserve();

    /// <summary>
    /// Says that the consumer has finished with a delivery it claimed (its task ended). Only a consume with
    /// <see cref="ConsumeOptions.CountUntilDone"/> (prefetch off) waits for this to take the next message; for others it
    /// does nothing. Calling it more than once, or for a delivery that was never claimed, is harmless.
    /// </summary>
    public void Done() => FreeWindowSlot();

    /// <summary>Whether <see cref="Defer"/> was called.</summary>
    protected bool IsDeferred => Volatile.Read(ref _wasDeferred) != 0;

    /// <summary>
    /// Takes the delivery for running (or for giving back): after this the transport can no longer withdraw it.
    /// Returns <see langword="false"/> when the transport withdrew it first: then drop it without settling,
    /// because the broker has given the message to a consumer again.
    /// </summary>
    public bool TryClaim()
    {
        if (IsStale && TryWithdraw())
        {
            return false;
        }

        int state = Volatile.Read(ref _state);
        while (state is Fresh or Waiting)
        {
            int seen = Interlocked.CompareExchange(ref _state, Claimed, state);
            if (seen == state)
            {
                return true;
            }

            state = seen;
        }

        return state == Claimed;
    }

    /// <summary>
    /// Whether the broker has taken the message back already (AMQP: the channel that delivered it was lost), so that
    /// <see cref="TryClaim"/> withdraws it instead. <value>false</value>
    /// </summary>
    protected virtual bool IsStale => false;

    /// <summary>Cancelled when the transport withdraws the delivery, so that a timer holding it stops waiting.</summary>
    public CancellationToken WithdrawnToken
    {
        get
        {
            // Made on first use: only deliveries that wait in a timer need one.
            CancellationTokenSource? source = Volatile.Read(ref _withdrawn);
            if (source is null)
            {
                var created = new CancellationTokenSource();
                source = Interlocked.CompareExchange(ref _withdrawn, created, null) ?? created;
                if (!ReferenceEquals(source, created))
                {
                    created.Dispose();
                }
            }

            if (Volatile.Read(ref _state) == Withdrawn)
            {
                source.Cancel();
            }

            return source.Token;
        }
    }

    /// <summary>
    /// Withdraws an unclaimed delivery: the holder will drop it, and its own acks and rejects are ignored. The
    /// transport settles it itself, or knows the broker has already taken it back (a lost channel). Returns
    /// <see langword="false"/> when the worker has claimed it.
    /// </summary>
    protected bool TryWithdraw()
    {
        int state = Volatile.Read(ref _state);
        while (state is Fresh or Waiting)
        {
            int seen = Interlocked.CompareExchange(ref _state, Withdrawn, state);
            if (seen == state)
            {
                Interlocked.Exchange(ref _settled, 1);
                FreeWindowSlot();
                Volatile.Read(ref _withdrawn)?.Cancel();
                return true;
            }

            state = seen;
        }

        return false;
    }

    /// <summary>
    /// Called once when the delivery is deferred: a transport whose broker counts the prefetch (AMQP's qos) raises
    /// it here, as Celery does for each ETA task, and lowers it again when the delivery is settled.
    /// </summary>
    protected virtual void OnDeferred()
    {
    }

    private void LeaveReserve()
    {
        if (_window is not null && Interlocked.Exchange(ref _inReserve, 0) == 1)
        {
            _window.LeaveReserve();
        }
    }

    private void FreeWindowSlot()
    {
        // Deferral and settling may race: whichever comes first frees the slot, exactly once. The slot is freed before
        // the delivery leaves the reserve, so that a consumer woken by the last one leaving finds its room too.
        if (_window is not null && Interlocked.Exchange(ref _windowSlotFreed, 1) == 0)
        {
            _window.Release();
        }

        LeaveReserve();
    }

    private ValueTask SettleThenFreeSlot(bool? requeue, CancellationToken ct)
    {
        if (_window is { CountsUntilDone: true } && Volatile.Read(ref _state) == Claimed)
        {
            // Prefetch off: an early ack must not make room while the task still runs; Done does.
            return SettleAsync(requeue, ct);
        }

        ValueTask settle;
        try
        {
            settle = SettleAsync(requeue, ct);
        }
        catch
        {
            FreeWindowSlot();
            throw;
        }

        if (settle.IsCompletedSuccessfully || requeue is null)
        {
            // An ack on its way makes room at once, as kombu's QoS counts an acked message out before its ack is
            // flushed: the consumer takes the next batch while the acks are on the wire, instead of one round trip
            // later. A message whose ack is lost with the worker comes back, as one not yet acked would.
            FreeWindowSlot();
            return settle;
        }

        return AwaitThenFreeSlotAsync(settle);
    }

    private async ValueTask AwaitThenFreeSlotAsync(ValueTask settle)
    {
        try
        {
            await settle.ConfigureAwait(false);
        }
        finally
        {
            FreeWindowSlot();
        }
    }

    /// <summary>Settles once: <paramref name="requeue"/> is <see langword="null"/> for an ack.</summary>
    protected abstract ValueTask SettleAsync(bool? requeue, CancellationToken ct);
}
