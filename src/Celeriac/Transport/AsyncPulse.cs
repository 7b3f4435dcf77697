namespace Celeriac.Transport;

/// <summary>
/// A level-free wake-up: <see cref="WaitAsync"/> returns a task that completes at the next
/// <see cref="Pulse"/>. Take the task before checking for work, so that no pulse is missed.
/// </summary>
public sealed class AsyncPulse
{
    private TaskCompletionSource _current = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The task of the next pulse.</summary>
    public Task WaitAsync() => Volatile.Read(ref _current).Task;

    /// <summary>Wakes every waiter.</summary>
    public void Pulse()
    {
        TaskCompletionSource current = Volatile.Read(ref _current);
        if (!current.Task.IsCompleted &&
            Interlocked.CompareExchange(ref _current, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), current) == current)
        {
            current.TrySetResult();
        }
    }
}
