namespace Celeriac.Transport;

/// <summary>
/// Counts deliveries held by a consumer and lets it take more only while fewer than the window are
/// held, for transports that do not have AMQP's basic.qos.
/// </summary>
public sealed class PrefetchWindow
{
    private readonly Lock _gate = new();
    private readonly int _size;
    private readonly int _wakeAt;
    private readonly bool _reportsStarts;
    private int _held;
    private int _reserved;
    private TaskCompletionSource? _waiter;

    /// <summary>Creates a window of <paramref name="size"/> (at least 1).</summary>
    public PrefetchWindow(int size)
        : this(size, countsUntilDone: false)
    {
    }

    /// <summary>Creates the window a consume asks for: its prefetch, and whether claimed deliveries count until done.</summary>
    public PrefetchWindow(ConsumeOptions options)
        : this(options?.Prefetch ?? throw new ArgumentNullException(nameof(options)), options.CountUntilDone)
    {
        _reportsStarts = options.ReportsStarts && !options.CountUntilDone;
    }

    private PrefetchWindow(int size, bool countsUntilDone)
    {
        _size = Math.Max(1, size);
        CountsUntilDone = countsUntilDone;

        // Waking per settle would cost a wake-up per message, so a quarter of the window batches them; with prefetch
        // off the window is the pool itself, and a free slot must take its next task at once.
        _wakeAt = countsUntilDone ? 1 : Math.Max(1, _size / 4);
    }

    /// <summary>
    /// Whether a delivery the consumer has claimed keeps its place until <see cref="Delivery.Done"/>, not only until it
    /// is settled (<see cref="ConsumeOptions.CountUntilDone"/>).
    /// </summary>
    public bool CountsUntilDone { get; }

    /// <summary>How many more deliveries may be taken now.</summary>
    public int Free
    {
        get
        {
            lock (_gate)
            {
                return _size - _held;
            }
        }
    }

    /// <summary>Records <paramref name="count"/> deliveries as taken.</summary>
    public void Take(int count)
    {
        lock (_gate)
        {
            _held += count;
        }
    }

    /// <summary>Records one delivery as settled (or done) and wakes a waiter once the window may be refilled.</summary>
    public void Release()
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            _held--;
            waiter = TakeWaiterIfDue();
        }

        waiter?.TrySetResult();
    }

    /// <summary>A delivery was handed out: it waits to be started.</summary>
    internal void EnterReserve() => Interlocked.Increment(ref _reserved);

    /// <summary>A delivery stopped waiting to be started: it was started, deferred, settled or withdrawn.</summary>
    internal void LeaveReserve()
    {
        // Only the last one to leave can make a waiter due, so the others take no lock.
        if (Interlocked.Decrement(ref _reserved) != 0)
        {
            return;
        }

        TaskCompletionSource? waiter;
        lock (_gate)
        {
            waiter = TakeWaiterIfDue();
        }

        waiter?.TrySetResult();
    }

    /// <summary>
    /// When a consumer that waits for a full window to open is woken. One that reports starts
    /// (<see cref="ConsumeOptions.ReportsStarts"/>) refills once nothing in the window waits to be started, and then with
    /// all the room there is: refilling as soon as a little room opened cost a take (a broker round trip, a write
    /// transaction) for every few messages, while the pool still has the last started messages to work on during the
    /// take. Others are woken once a quarter of the window is free.
    /// </summary>
    private TaskCompletionSource? TakeWaiterIfDue()
    {
        if (_waiter is null || _held >= _size
            || (_reportsStarts ? Volatile.Read(ref _reserved) > 0 : _size - _held < _wakeAt))
        {
            return null;
        }

        TaskCompletionSource waiter = _waiter;
        _waiter = null;
        return waiter;
    }

    /// <summary>Whether the window is full: nothing more may be taken until a delivery is settled.</summary>
    public bool IsFull => Volatile.Read(ref _held) >= _size;

    /// <summary>Waits until at least one delivery may be taken.</summary>
    public Task WaitForRoomAsync(CancellationToken ct)
    {
        lock (_gate)
        {
            if (_held < _size)
            {
                return Task.CompletedTask;
            }

            // The consumer continues on the settling thread: it only takes the next messages, which is
            // cheaper than a thread-pool hop per wake-up.
            _waiter ??= new TaskCompletionSource();
            return _waiter.Task.WaitAsync(ct);
        }
    }
}
