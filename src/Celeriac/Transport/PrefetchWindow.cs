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
    private int _held;
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

    /// <summary>Records one delivery as settled (or done) and wakes a waiter once enough of the window is free.</summary>
    public void Release()
    {
        TaskCompletionSource? waiter = null;
        lock (_gate)
        {
            _held--;
            if (_waiter is not null && _size - _held >= _wakeAt)
            {
                waiter = _waiter;
                _waiter = null;
            }
        }

        waiter?.TrySetResult();
    }

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
