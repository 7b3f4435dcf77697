namespace Celeriac;

/// <summary>
/// A worker's settings, apart from a client's (<c>AddWorker(w =&gt; ...)</c>; the <c>Celeriac:Worker</c> section, or the
/// same keys flat under <c>Celeriac</c> as before). A producer never needs them. In the delegate of <c>AddWorker</c>
/// a setting left <see langword="null"/> keeps the app's value; read through <c>IOptions&lt;CeleriacWorkerOptions&gt;</c>
/// each holds the value the worker runs with. The worker reads the effective values from <see cref="CeleriacOptions"/>,
/// where they stay for code that set them there.
/// </summary>
public sealed class CeleriacWorkerOptions
{
    /// <summary>Tasks run at once (<c>Concurrency</c>; Celery's <c>worker_concurrency</c>, <c>-c</c>).</summary>
    public int? Concurrency { get; set; }

    /// <summary>Where tasks run: <c>async</c>, <c>threads</c>, <c>prefork</c> or <c>solo</c> (<c>Pool</c>; <c>-P</c>).</summary>
    public string? Pool { get; set; }

    /// <summary><c>MAX,MIN</c> pool sizes (<c>Autoscale</c>; <c>--autoscale</c>).</summary>
    public string? Autoscale { get; set; }

    /// <summary>How long the pool stays grown before autoscale shrinks it (<c>AutoscaleKeepAlive</c>).</summary>
    public TimeSpan? AutoscaleKeepAlive { get; set; }

    /// <summary>Messages prefetched per slot; 0 is no limit (<c>PrefetchMultiplier</c>; <c>worker_prefetch_multiplier</c>).</summary>
    public int? PrefetchMultiplier { get; set; }

    /// <summary>Take a message only when a slot is free (<c>DisablePrefetch</c>; <c>worker_disable_prefetch</c>).</summary>
    public bool? DisablePrefetch { get; set; }

    /// <summary>Ack after the task ran (<c>AcksLate</c>; <c>task_acks_late</c>).</summary>
    public bool? AcksLate { get; set; }

    /// <summary>Ack late-acked tasks that failed or timed out (<c>AcksOnFailureOrTimeout</c>).</summary>
    public bool? AcksOnFailureOrTimeout { get; set; }

    /// <summary>Give a late-acked task cut off by a cold stop back to the queue (<c>RejectOnWorkerLost</c>).</summary>
    public bool? RejectOnWorkerLost { get; set; }

    /// <summary>Hard time limit per task (<c>TaskTimeLimit</c>; <c>task_time_limit</c>).</summary>
    public TimeSpan? TaskTimeLimit { get; set; }

    /// <summary>Soft time limit per task (<c>TaskSoftTimeLimit</c>; <c>task_soft_time_limit</c>).</summary>
    public TimeSpan? TaskSoftTimeLimit { get; set; }

    /// <summary>How long a warm stop lets running tasks finish (<c>SoftShutdownTimeout</c>).</summary>
    public TimeSpan? SoftShutdownTimeout { get; set; }

    /// <summary>How long a cold stop waits for the tasks it cancelled (<c>ColdShutdownGrace</c>).</summary>
    public TimeSpan? ColdShutdownGrace { get; set; }

    /// <summary>Prefork: replace a child after this many tasks (<c>MaxTasksPerChild</c>).</summary>
    public int? MaxTasksPerChild { get; set; }

    /// <summary>Prefork: replace a child past this many KiB (<c>MaxMemoryPerChild</c>).</summary>
    public int? MaxMemoryPerChild { get; set; }

    /// <summary>Store STARTED when a task starts (<c>TrackStarted</c>; <c>task_track_started</c>).</summary>
    public bool? TrackStarted { get; set; }

    /// <summary>Send task events (<c>TaskEvents</c>; <c>-E</c>).</summary>
    public bool? TaskEvents { get; set; }

    /// <summary>No worker events (<c>WithoutHeartbeat</c>; <c>--without-heartbeat</c>).</summary>
    public bool? WithoutHeartbeat { get; set; }

    /// <summary>No mingle at start-up (<c>WithoutMingle</c>; <c>--without-mingle</c>).</summary>
    public bool? WithoutMingle { get; set; }

    /// <summary>How often the worker sends <c>worker-heartbeat</c> (<c>HeartbeatInterval</c>).</summary>
    public TimeSpan? HeartbeatInterval { get; set; }

    /// <summary>A file that keeps revoked ids across restarts (<c>StateDb</c>; <c>--statedb</c>).</summary>
    public string? StateDb { get; set; }

    /// <summary>The worker's node name (<c>NodeName</c>, <c>CELERIAC_HOSTNAME</c>; <c>-n</c>).</summary>
    public string? NodeName { get; set; }

    /// <summary>Queues the worker consumes (<c>Queues</c>; <c>-Q</c>); empty keeps the app's (its default queue).</summary>
    public IList<string> Queues { get; } = [];

    /// <summary>Sets on <paramref name="options"/> every setting this holds.</summary>
    internal void ApplyTo(CeleriacOptions options)
    {
        if (Concurrency is { } concurrency)
        {
            options.Concurrency = concurrency;
        }

        if (Pool is not null)
        {
            options.Pool = Pool;
        }

        if (Autoscale is not null)
        {
            options.Autoscale = Autoscale;
        }

        if (AutoscaleKeepAlive is { } autoscaleKeepAlive)
        {
            options.AutoscaleKeepAlive = autoscaleKeepAlive;
        }

        if (PrefetchMultiplier is { } prefetchMultiplier)
        {
            options.PrefetchMultiplier = prefetchMultiplier;
        }

        if (DisablePrefetch is { } disablePrefetch)
        {
            options.DisablePrefetch = disablePrefetch;
        }

        if (AcksLate is { } acksLate)
        {
            options.AcksLate = acksLate;
        }

        if (AcksOnFailureOrTimeout is { } acksOnFailureOrTimeout)
        {
            options.AcksOnFailureOrTimeout = acksOnFailureOrTimeout;
        }

        if (RejectOnWorkerLost is { } rejectOnWorkerLost)
        {
            options.RejectOnWorkerLost = rejectOnWorkerLost;
        }

        if (TaskTimeLimit is { } taskTimeLimit)
        {
            options.TaskTimeLimit = taskTimeLimit;
        }

        if (TaskSoftTimeLimit is { } taskSoftTimeLimit)
        {
            options.TaskSoftTimeLimit = taskSoftTimeLimit;
        }

        if (SoftShutdownTimeout is { } softShutdownTimeout)
        {
            options.SoftShutdownTimeout = softShutdownTimeout;
        }

        if (ColdShutdownGrace is { } coldShutdownGrace)
        {
            options.ColdShutdownGrace = coldShutdownGrace;
        }

        if (MaxTasksPerChild is { } maxTasksPerChild)
        {
            options.MaxTasksPerChild = maxTasksPerChild;
        }

        if (MaxMemoryPerChild is { } maxMemoryPerChild)
        {
            options.MaxMemoryPerChild = maxMemoryPerChild;
        }

        if (TrackStarted is { } trackStarted)
        {
            options.TrackStarted = trackStarted;
        }

        if (TaskEvents is { } taskEvents)
        {
            options.TaskEvents = taskEvents;
        }

        if (WithoutHeartbeat is { } withoutHeartbeat)
        {
            options.WithoutHeartbeat = withoutHeartbeat;
        }

        if (WithoutMingle is { } withoutMingle)
        {
            options.WithoutMingle = withoutMingle;
        }

        if (HeartbeatInterval is { } heartbeatInterval)
        {
            options.HeartbeatInterval = heartbeatInterval;
        }

        if (StateDb is not null)
        {
            options.StateDb = StateDb;
        }

        if (NodeName is not null)
        {
            options.NodeName = NodeName;
        }

        if (Queues.Count > 0)
        {
            options.Queues.Clear();
            foreach (string queue in Queues)
            {
                options.Queues.Add(queue);
            }
        }
    }

    /// <summary>Takes every worker setting from <paramref name="options"/> (the effective values).</summary>
    internal void CopyFrom(CeleriacOptions options)
    {
        Concurrency = options.Concurrency;
        Pool = options.Pool;
        Autoscale = options.Autoscale;
        AutoscaleKeepAlive = options.AutoscaleKeepAlive;
        PrefetchMultiplier = options.PrefetchMultiplier;
        DisablePrefetch = options.DisablePrefetch;
        AcksLate = options.AcksLate;
        AcksOnFailureOrTimeout = options.AcksOnFailureOrTimeout;
        RejectOnWorkerLost = options.RejectOnWorkerLost;
        TaskTimeLimit = options.TaskTimeLimit;
        TaskSoftTimeLimit = options.TaskSoftTimeLimit;
        SoftShutdownTimeout = options.SoftShutdownTimeout;
        ColdShutdownGrace = options.ColdShutdownGrace;
        MaxTasksPerChild = options.MaxTasksPerChild;
        MaxMemoryPerChild = options.MaxMemoryPerChild;
        TrackStarted = options.TrackStarted;
        TaskEvents = options.TaskEvents;
        WithoutHeartbeat = options.WithoutHeartbeat;
        WithoutMingle = options.WithoutMingle;
        HeartbeatInterval = options.HeartbeatInterval;
        StateDb = options.StateDb;
        NodeName = options.NodeName;
        Queues.Clear();
        foreach (string queue in options.Queues)
        {
            Queues.Add(queue);
        }
    }
}
