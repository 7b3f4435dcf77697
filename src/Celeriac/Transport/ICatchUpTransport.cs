namespace Celeriac.Transport;

/// <summary>
/// A transport whose consumers can be asked to catch up with the broker. Remote control's listing inspects
/// (<c>active</c>, <c>reserved</c>, <c>scheduled</c>, <c>query_task</c>) wait for it, briefly, before they answer: a task
/// sent just before the inspect is then listed, as Celery's single-threaded consumer, which reads the task's message
/// first, lists it. A transport whose control messages cannot overtake its task messages need not implement it.
/// </summary>
public interface ICatchUpTransport
{
    /// <summary>
    /// Completes once each running consume of this transport has taken what its queues held when this was called and
    /// handed it to its reader, or has no room in its prefetch window to take more.
    /// </summary>
    ValueTask CatchUpAsync(CancellationToken ct = default);
}
