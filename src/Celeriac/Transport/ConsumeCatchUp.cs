namespace Celeriac.Transport;

/// <summary>
/// One consume loop's part of <see cref="ICatchUpTransport"/>: the loop numbers its takes and says when a take found
/// its queues empty or has handed over what it found; a catch-up waits for a take that began after it was asked, or
/// for nothing while the loop's window is full (nothing more can be taken then). A loop that waits for the broker begins
/// each take with <see cref="BeginTake(out Task)"/>; if the take finds nothing it checks <see cref="Pending"/> (take
/// again first), else waits for the broker and also wakes on the task it was given.
/// </summary>
/// <param name="window">The loop's prefetch window.</param>
public sealed class ConsumeCatchUp(PrefetchWindow window)
{
    private readonly Lock _gate = new();
    private readonly List<(long Take, TaskCompletionSource Met)> _waiting = [];
    private TaskCompletionSource _asked = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _takes;
    private int _count;

    /// <summary>Whether a catch-up waits for a take that has not begun yet.</summary>
    public bool Pending => Volatile.Read(ref _count) > 0;

    /// <summary>Numbers a take that begins now (before it looks at the broker).</summary>
    public long BeginTake() => Interlocked.Increment(ref _takes);

    /// <summary>
    /// Numbers a take that begins now, and gives the task that a catch-up asked after this call completes: a loop whose
    /// take finds nothing waits on it beside the broker. Read before the take is numbered, it also wakes the loop for a
    /// catch-up asked between its <see cref="Pending"/> check and its wait (read after, that one would be missed).
    /// </summary>
    public long BeginTake(out Task asked)
    {
        asked = Volatile.Read(ref _asked).Task; // No lock: a loop calls this before each take.
        return Interlocked.Increment(ref _takes);
    }

    /// <summary>The takes up to <paramref name="take"/> found their queues empty or have handed over what they found.</summary>
    public void Met(long take)
    {
        if (Volatile.Read(ref _count) == 0)
        {
            return; // The common case, on every take: nobody waits.
        }

        lock (_gate)
        {
            for (int i = _waiting.Count - 1; i >= 0; i--)
            {
                if (_waiting[i].Take <= take)
                {
                    _waiting[i].Met.TrySetResult();
                    _waiting.RemoveAt(i);
                }
            }

            Volatile.Write(ref _count, _waiting.Count);
        }
    }

    /// <summary>Every take so far has handed over what it found (called as the loop comes round, before it waits for room).</summary>
    public void HandedOver() => Met(window.IsFull ? long.MaxValue : Interlocked.Read(ref _takes));

    /// <summary>The loop has ended: no catch-up waits for it.</summary>
    public void Ended() => Met(long.MaxValue);

    /// <summary>Completes once a take begun after this call is met, or at once while the window is full.</summary>
    public Task WaitAsync(CancellationToken ct)
    {
        TaskCompletionSource met;
        TaskCompletionSource asked;
        if (window.IsFull)
        {
            return Task.CompletedTask;
        }

        lock (_gate)
        {
            met = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting.Add((Interlocked.Read(ref _takes) + 1, met));
            Volatile.Write(ref _count, _waiting.Count);
            asked = _asked;

            // Released after the take number above was read: a loop that reads the new task begins a later take.
            Volatile.Write(ref _asked, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }

        asked.TrySetResult();
        return met.Task.WaitAsync(ct);
    }
}
