using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Testing;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that knows when its timers are due, so that the harness can move time straight
/// to the next one (an ETA, a retry's countdown, a rate limit's next token) instead of a test sleeping for it.
/// </summary>
public sealed class HarnessTimeProvider : FakeTimeProvider
{
    private readonly ConcurrentDictionary<TrackedTimer, byte> _timers = new();

    /// <summary>Starts at <paramref name="start"/>.</summary>
    public HarnessTimeProvider(DateTimeOffset start)
        : base(start)
    {
    }

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var tracked = new TrackedTimer(this);
        tracked.Arm(dueTime, period);
        _timers[tracked] = 0;
        tracked.Inner = base.CreateTimer(callback, state, dueTime, period);
        return tracked;
    }

    /// <summary>
    /// When the next one-shot timer is due after now, or <see langword="null"/>. Periodic timers (heartbeats) are left
    /// out: they fire on the way, but stepping through them would only slow a test down.
    /// </summary>
    public DateTimeOffset? NextOneShotDue()
    {
        DateTimeOffset now = GetUtcNow();
        DateTimeOffset? next = null;
        foreach (TrackedTimer timer in _timers.Keys)
        {
            if (timer.Due is { } due && due > now && timer.Period is null && (next is null || due < next))
            {
                next = due;
            }
        }

        return next;
    }

    private sealed class TrackedTimer(HarnessTimeProvider owner) : ITimer
    {
        private readonly Lock _gate = new();
        private DateTimeOffset? _due;
        private TimeSpan? _period;

        public ITimer? Inner { get; set; }

        public DateTimeOffset? Due
        {
            get
            {
                lock (_gate)
                {
                    return _due;
                }
            }
        }

        public TimeSpan? Period
        {
            get
            {
                lock (_gate)
                {
                    return _period;
                }
            }
        }

        public void Arm(TimeSpan dueTime, TimeSpan period)
        {
            lock (_gate)
            {
                _due = dueTime == Timeout.InfiniteTimeSpan ? null : owner.GetUtcNow() + dueTime;
                _period = period == Timeout.InfiniteTimeSpan || period == TimeSpan.Zero ? null : period;
            }
        }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            Arm(dueTime, period);
            return Inner?.Change(dueTime, period) ?? false;
        }

        public void Dispose()
        {
            owner._timers.TryRemove(this, out _);
            Inner?.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            owner._timers.TryRemove(this, out _);
            return Inner?.DisposeAsync() ?? ValueTask.CompletedTask;
        }
    }
}
