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

    /// <summary>The id of the task sending this one.</summary>
    public string? ParentId { get; init; }

    /// <summary>The id of the workflow's first task.</summary>
    public string? RootId { get; init; }
}
