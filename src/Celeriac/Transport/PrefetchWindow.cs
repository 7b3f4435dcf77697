namespace Celeriac.Transport;

/// <summary>
/// Counts deliveries held by a consumer and lets it take more only while fewer than the window are
/// held, for transports that do not have AMQP's basic.qos.
/// </summary>
public sealed class PrefetchWindow
{
    private readonly Lock _gate = new();
    private readonly int _size;
    private int _held;
    private TaskCompletionSource? _waiter;

    /// <summary>Creates a window of <paramref name="size"/> (at least 1).</summary>
    public PrefetchWindow(int size) => _size = Math.Max(1, size);

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

    /// <summary>Records one delivery as settled and wakes a waiter once a quarter of the window is free.</summary>
    public void Release()
    {
        TaskCompletionSource? waiter = null;
        lock (_gate)
        {
            _held--;

            // Waking per settle would cost a wake-up per message; a quarter of the window batches them.
            if (_waiter is not null && _size - _held >= Math.Max(1, _size / 4))
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
