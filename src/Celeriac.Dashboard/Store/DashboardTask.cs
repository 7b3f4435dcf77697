namespace Celeriac.Dashboard.Store;

/// <summary>
/// A task as the dashboard keeps it: Flower's task dict (times in seconds since the Unix epoch, arguments and results as
/// the reprs the events carry) plus <see cref="RetryOf"/>, the task a dashboard retry re-sent.
/// </summary>
public sealed record DashboardTask
{
    /// <summary>The task id.</summary>
    public required string Uuid { get; init; }

    /// <summary>Its state by Celery's precedence (PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED, REJECTED).</summary>
    public string State { get; init; } = "PENDING";

    /// <summary>The task name.</summary>
    public string? Name { get; init; }

    /// <summary>When it was sent (a <c>task-sent</c> event).</summary>
    public double? Sent { get; init; }

    /// <summary>When a worker received it.</summary>
    public double? Received { get; init; }

    /// <summary>When it started.</summary>
    public double? Started { get; init; }

    /// <summary>When it succeeded.</summary>
    public double? Succeeded { get; init; }

    /// <summary>When it failed.</summary>
    public double? Failed { get; init; }

    /// <summary>When it was last retried.</summary>
    public double? Retried { get; init; }

    /// <summary>When it was revoked.</summary>
    public double? Revoked { get; init; }

    /// <summary>When it was rejected.</summary>
    public double? Rejected { get; init; }

    /// <summary>When its current state was reached: the order of the task list and of pruning.</summary>
    public double Timestamp { get; init; }

    /// <summary>How long it ran, in seconds.</summary>
    public double? Runtime { get; init; }

    /// <summary>The positional arguments' repr.</summary>
    public string? Args { get; init; }

    /// <summary>The keyword arguments' repr.</summary>
    public string? Kwargs { get; init; }

    /// <summary>The result's repr.</summary>
    public string? Result { get; init; }

    /// <summary>The exception's repr.</summary>
    public string? Exception { get; init; }

    /// <summary>The traceback.</summary>
    public string? Traceback { get; init; }

    /// <summary>The worker's hostname.</summary>
    public string? Worker { get; init; }

    /// <summary>How many times it had been retried.</summary>
    public long? Retries { get; init; }

    /// <summary>Its ETA (ISO 8601).</summary>
    public string? Eta { get; init; }

    /// <summary>Its expiry (ISO 8601).</summary>
    public string? Expires { get; init; }

    /// <summary>The routing key it was sent with.</summary>
    public string? RoutingKey { get; init; }

    /// <summary>The exchange it was sent to.</summary>
    public string? Exchange { get; init; }

    /// <summary>The first task of its workflow.</summary>
    public string? RootId { get; init; }

    /// <summary>The task that sent it.</summary>
    public string? ParentId { get; init; }

    /// <summary>The client that sent it.</summary>
    public string? Client { get; init; }

    /// <summary>The clock of the event that set its fields last.</summary>
    public long Clock { get; init; }

    /// <summary>The failed task that the dashboard re-sent as this one, if any.</summary>
    public string? RetryOf { get; init; }
}

/// <summary>A worker as the dashboard keeps it.</summary>
public sealed record DashboardWorker
{
    /// <summary>Its node name.</summary>
    public required string Hostname { get; init; }

    /// <summary>Its process id.</summary>
    public long? Pid { get; init; }

    /// <summary>Its heartbeat interval in seconds.</summary>
    public double Freq { get; init; } = 60;

    /// <summary>When its latest heartbeat (or task event) was received, in seconds since the Unix epoch.</summary>
    public double? LastHeartbeat { get; init; }

    /// <summary>Whether it said it went offline (<c>worker-offline</c>) after its latest heartbeat.</summary>
    public bool WentOffline { get; init; }

    /// <summary>Tasks running at its latest heartbeat.</summary>
    public long? Active { get; init; }

    /// <summary>Tasks processed at its latest heartbeat.</summary>
    public long? Processed { get; init; }

    /// <summary><c>task-succeeded</c> events seen from it.</summary>
    public long Succeeded { get; init; }

    /// <summary><c>task-failed</c> events seen from it.</summary>
    public long Failed { get; init; }

    /// <summary><c>task-retried</c> events seen from it.</summary>
    public long RetriedCount { get; init; }

    /// <summary>Its load averages (1, 5, 15 minutes).</summary>
    public IReadOnlyList<double>? LoadAverage { get; init; }

    /// <summary>Its pool's size (from <c>inspect stats</c>).</summary>
    public int? PoolSize { get; init; }

    /// <summary>The queues it consumes (from <c>inspect active_queues</c>).</summary>
    public IReadOnlyList<string> Queues { get; init; } = [];

    /// <summary>Its software.</summary>
    public string? SwIdent { get; init; }

    /// <summary>Its software's version.</summary>
    public string? SwVer { get; init; }

    /// <summary>Its operating system.</summary>
    public string? SwSys { get; init; }

    /// <summary>Celery's liveness: a heartbeat within twice its <see cref="Freq"/> of <paramref name="now"/>, and no offline event since.</summary>
    public bool IsOnline(double now) => !WentOffline && LastHeartbeat is { } last && now < last + (Freq * 2);
}

/// <summary>One event of a task's timeline, with the fields it carried (as JSON).</summary>
/// <param name="Uuid">The task id.</param>
/// <param name="Type">The event type (<c>task-received</c>, ...).</param>
/// <param name="Timestamp">When it happened, in seconds since the Unix epoch.</param>
/// <param name="Hostname">The sender.</param>
/// <param name="FieldsJson">The event's other fields as a JSON object.</param>
public sealed record TaskEventRecord(string Uuid, string Type, double Timestamp, string? Hostname, string FieldsJson);

/// <summary>What one write stores: tasks and workers upserted, events appended, in one transaction.</summary>
/// <param name="Tasks">Tasks to insert or update; a null field keeps what the store has.</param>
/// <param name="Workers">Workers to insert or replace.</param>
/// <param name="Events">Task events to append.</param>
public sealed record DashboardBatch(IReadOnlyList<DashboardTask> Tasks, IReadOnlyList<DashboardWorker> Workers, IReadOnlyList<TaskEventRecord> Events);

/// <summary>A page of tasks and how many matched in all.</summary>
/// <param name="Total">Tasks that matched.</param>
/// <param name="Tasks">The page.</param>
public sealed record TaskPage(long Total, IReadOnlyList<DashboardTask> Tasks);

/// <summary>Tasks by minute and state, and runtime percentiles per task name.</summary>
/// <param name="Throughput">Counts per minute (unix seconds of the minute's start) and state (<c>RECEIVED</c>, <c>SUCCESS</c>, <c>FAILURE</c>, <c>RETRY</c>, <c>REVOKED</c>).</param>
/// <param name="Runtimes">Runtime percentiles per task name.</param>
public sealed record DashboardStats(IReadOnlyList<ThroughputPoint> Throughput, IReadOnlyList<RuntimeStats> Runtimes);

/// <summary>A minute's count of tasks that reached a state.</summary>
/// <param name="Minute">The minute's start, in seconds since the Unix epoch.</param>
/// <param name="State">The state.</param>
/// <param name="Count">How many.</param>
public sealed record ThroughputPoint(long Minute, string State, long Count);

/// <summary>Runtime percentiles of one task name.</summary>
/// <param name="Task">The task name.</param>
/// <param name="Count">Runs counted.</param>
/// <param name="P50">Median runtime in seconds.</param>
/// <param name="P90">90th percentile.</param>
/// <param name="P99">99th percentile.</param>
public sealed record RuntimeStats(string Task, long Count, double P50, double P90, double P99);
