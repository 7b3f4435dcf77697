namespace Celeriac.Worker;

/// <summary>What a health check reads: when the worker last took a message, sent a heartbeat, or failed to consume.</summary>
public sealed partial class CeleriacWorker
{
    // Monotonic timestamps of the app's TimeProvider; 0 for never. Written per take without a lock: a reader wants
    // only a recent value.
    private long _lastTake;
    private long _lastHeartbeat;
    private long _lastFault;
    private string? _lastFaultMessage;

    /// <summary>A snapshot of the worker's liveness, for health checks.</summary>
    public WorkerLiveness GetLiveness()
    {
        TimeProvider time = _app.Time;
        return new WorkerLiveness
        {
            NodeName = _node,
            Consuming = _ready.Task.IsCompleted,
            Queues = _queues,
            SinceLastTake = Since(time, Volatile.Read(ref _lastTake)),
            SinceLastHeartbeat = Since(time, Volatile.Read(ref _lastHeartbeat)),
            SinceConsumerFault = Since(time, Volatile.Read(ref _lastFault)),
            ConsumerFault = _lastFaultMessage,
            Uptime = _ready.Task.IsCompleted ? time.GetUtcNow() - _startedAt : TimeSpan.Zero,
            HeartbeatInterval = _events is null || _app.Options.WithoutHeartbeat ? null : _app.Options.HeartbeatInterval,
        };
    }

    private static TimeSpan? Since(TimeProvider time, long stamp) => stamp == 0 ? null : time.GetElapsedTime(stamp);

    private void NoteTake() => Volatile.Write(ref _lastTake, _app.Time.GetTimestamp());

    private void NoteHeartbeat() => Volatile.Write(ref _lastHeartbeat, _app.Time.GetTimestamp());

    private void NoteConsumerFault(Exception ex)
    {
        _lastFaultMessage = ex.GetType().Name + ": " + ex.Message;
        Volatile.Write(ref _lastFault, _app.Time.GetTimestamp());
    }
}

/// <summary>A worker's liveness as <see cref="CeleriacWorker.GetLiveness"/> reports it.</summary>
public sealed record WorkerLiveness
{
    /// <summary>The worker's node name.</summary>
    public required string NodeName { get; init; }

    /// <summary>Whether its consumer has started.</summary>
    public required bool Consuming { get; init; }

    /// <summary>The queues it consumes.</summary>
    public required IReadOnlyList<string> Queues { get; init; }

    /// <summary>How long since it last took a message; null when it has taken none.</summary>
    public TimeSpan? SinceLastTake { get; init; }

    /// <summary>How long since it last sent a heartbeat the broker accepted; null when it has sent none.</summary>
    public TimeSpan? SinceLastHeartbeat { get; init; }

    /// <summary>How long since its consumer last failed (the broker went away); null when it never failed.</summary>
    public TimeSpan? SinceConsumerFault { get; init; }

    /// <summary>The consumer's last failure, as a type and message.</summary>
    public string? ConsumerFault { get; init; }

    /// <summary>How long it has consumed.</summary>
    public TimeSpan Uptime { get; init; }

    /// <summary>The heartbeat interval, or null when the worker sends no heartbeats.</summary>
    public TimeSpan? HeartbeatInterval { get; init; }
}
