// In Concurrency/ (a leaf) because transports and result backends both wake waiters with it, and neither may
// depend on the other; the namespace stays the one providers import it from.
namespace Celeriac.Transport;

/// <summary>
/// A level-free wake-up: <see cref="WaitAsync"/> returns a task that completes at the next
/// <see cref="Pulse"/>. Take the task before checking for work, so that no pulse is missed.
/// </summary>
public sealed class AsyncPulse
{
    private TaskCompletionSource _current = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _watched;

    /// <summary>The task of the next pulse.</summary>
    public Task WaitAsync()
    {
        Task task = Volatile.Read(ref _current).Task;
        Volatile.Write(ref _watched, 1);
        return task;
    }

    /// <summary>Wakes every waiter.</summary>
    public void Pulse()
    {
        // Nobody took the task since the last pulse: nothing to wake, and no allocation on busy publishers.
        if (Interlocked.Exchange(ref _watched, 0) == 0)
        {
            return;
        }

        TaskCompletionSource current = Volatile.Read(ref _current);
        if (Interlocked.CompareExchange(ref _current, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), current) == current)
        {
            current.TrySetResult();
        }
    }
}
