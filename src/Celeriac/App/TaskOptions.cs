namespace Celeriac;

/// <summary>How a task runs, set where it is defined.</summary>
public sealed record TaskOptions
{
    /// <summary>The queue it is routed to; <see langword="null"/> uses the routes and the default queue.</summary>
    public string? Queue { get; init; }

    /// <summary>Ack after it ran; <see langword="null"/> uses the app's <see cref="CeleriacOptions.AcksLate"/>.</summary>
    public bool? AcksLate { get; init; }

    /// <summary>Store no result (<c>ignore_result</c>).</summary>
    public bool IgnoreResult { get; init; }

    /// <summary>Store STARTED when it starts; <see langword="null"/> uses the app's setting.</summary>
    public bool? TrackStarted { get; init; }

    /// <summary>The most retries before the original error becomes the result (<c>max_retries</c>); <see langword="null"/> retries without end. <value>3</value></summary>
    public int? MaxRetries { get; init; } = 3;

    /// <summary>The delay of a retry that names none (<c>default_retry_delay</c>). <value>3 minutes</value></summary>
    public TimeSpan DefaultRetryDelay { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>Exception types (and their subtypes) that retry the task by themselves (<c>autoretry_for</c>).</summary>
    public IReadOnlyList<Type> AutoRetryFor { get; init; } = [];

    /// <summary>
    /// Exponential back-off for automatic retries (<c>retry_backoff</c>): the first delay, doubled at each retry;
    /// <see langword="null"/> uses <see cref="DefaultRetryDelay"/> every time. <value>null</value>
    /// </summary>
    public TimeSpan? RetryBackoff { get; init; }

    /// <summary>The longest back-off delay (<c>retry_backoff_max</c>). <value>10 minutes</value></summary>
    public TimeSpan RetryBackoffMax { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Full jitter on back-off delays: a random delay between 0 and the computed one (<c>retry_jitter</c>). <value>true</value></summary>
    public bool RetryJitter { get; init; } = true;

    /// <summary>Per-worker rate limit: <c>"100/s"</c>, <c>"10/m"</c>, <c>"1000/h"</c> or a number per second (<c>rate_limit</c>). <value>null</value></summary>
    public string? RateLimit { get; init; }

    /// <summary>Hard time limit (<c>time_limit</c>); <see langword="null"/> uses the worker's. <value>null</value></summary>
    public TimeSpan? TimeLimit { get; init; }

    /// <summary>Soft time limit (<c>soft_time_limit</c>); <see langword="null"/> uses the worker's. <value>null</value></summary>
    public TimeSpan? SoftTimeLimit { get; init; }

    /// <summary>Ack a late-acked task that failed or timed out (<c>acks_on_failure_or_timeout</c>); <see langword="null"/> uses the app's. <value>null</value></summary>
    public bool? AcksOnFailureOrTimeout { get; init; }

    /// <summary>
    /// Give a late-acked task cut off by a cold shutdown back to the queue instead of failing it (<c>reject_on_worker_lost</c>);
    /// <see langword="null"/> uses the app's <see cref="CeleriacOptions.RejectOnWorkerLost"/>. <value>null</value>
    /// </summary>
    public bool? RejectOnWorkerLost { get; init; }

    /// <summary>Store failures even when results are ignored (<c>store_errors_even_if_ignored</c>). <value>false</value></summary>
    public bool StoreErrorsEvenIfIgnored { get; init; }
}

/// <summary>How one call is sent (Celery's <c>apply_async</c> options).</summary>
public sealed record ApplyOptions
{
    /// <summary>The task id; a new uuid when <see langword="null"/>.</summary>
    public string? TaskId { get; init; }

    /// <summary>The queue; overrides routes.</summary>
    public string? Queue { get; init; }

    /// <summary>Run no sooner than this long from now.</summary>
    public TimeSpan? Countdown { get; init; }

    /// <summary>Run no sooner than this time.</summary>
    public DateTimeOffset? Eta { get; init; }

    /// <summary>Revoke it if it is received later than this long from now.</summary>
    public TimeSpan? ExpiresIn { get; init; }

    /// <summary>Revoke it if it is received after this time.</summary>
    public DateTimeOffset? Expires { get; init; }

    /// <summary>Message priority (0–9 on Redis and SQLite, up to the queue's maximum on RabbitMQ).</summary>
    public int? Priority { get; init; }

    /// <summary>Extra headers sent with the message.</summary>
    public IReadOnlyDictionary<string, object?>? Headers { get; init; }

    /// <summary>Display name for logs and monitors (<c>shadow</c>).</summary>
    public string? Shadow { get; init; }

    /// <summary>Ask the worker not to store the result.</summary>
    public bool IgnoreResult { get; init; }

    /// <summary>Hard time limit.</summary>
    public TimeSpan? TimeLimit { get; init; }

    /// <summary>Soft time limit.</summary>
    public TimeSpan? SoftTimeLimit { get; init; }

    /// <summary>The id of the task sending this one; by default the running task's (<see cref="TaskContext.Current"/>), as in Celery.</summary>
    public string? ParentId { get; init; }

    /// <summary>The id of the workflow's first task; by default the running task's root, else the task's own id.</summary>
    public string? RootId { get; init; }

    /// <summary>The group the task belongs to (the <c>group</c> header; <see cref="TaskContext.GroupId"/>). <value>null</value></summary>
    public string? GroupId { get; init; }

    /// <summary>The task's place in its group (the <c>group_index</c> header), which orders a chord's results. <value>null</value></summary>
    public long? GroupIndex { get; init; }
}
