// In Protocol/ because the clock is part of the event wire format (every event carries it) and the app, which sits
// below Events, stamps its task-sent events with it; the namespace is the one event users import.
namespace Celeriac.Events;

/// <summary>
/// A Lamport clock, as kombu's <c>LamportClock</c> that Celery keeps per app (<c>app.clock</c>): every event sent
/// moves it forward, and every event received moves it past the sender's value, so that events from many nodes can
/// be ordered where timestamps disagree.
/// </summary>
public sealed class LamportClock
{
    private long _value;

    /// <summary>The current value.</summary>
    public long Value => Interlocked.Read(ref _value);

    /// <summary>Moves the clock on by one for a local event and returns the new value.</summary>
    public long Forward() => Interlocked.Increment(ref _value);

    /// <summary>Moves the clock past a value another node sent (<c>max(local, other) + 1</c>) and returns the new value.</summary>
    public long Adjust(long other)
    {
        long current = Interlocked.Read(ref _value);
        while (true)
        {
            long next = Math.Max(current, other) + 1;
            long seen = Interlocked.CompareExchange(ref _value, next, current);
            if (seen == current)
            {
                return next;
            }

            current = seen;
        }
    }
}
