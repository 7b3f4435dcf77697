namespace Celeriac.Control;

/// <summary>
/// Remote control and inspection of the workers (Celery's <c>app.control</c>), as an interface so that code that
/// controls workers can take it from DI and a unit test can hand it a fake. <see cref="ControlClient"/> implements it
/// and <c>AddCeleriac</c> registers it. A fake need only implement <see cref="BroadcastAsync"/>: every named command,
/// and <see cref="Inspect"/>'s questions, are sent through it.
/// </summary>
public interface ICeleriacControl
{
    /// <summary>
    /// Sends <paramref name="command"/> with <paramref name="arguments"/>; with <see cref="ControlOptions.Reply"/>,
    /// returns the replies that came in time, in arrival order.
    /// </summary>
    Task<IReadOnlyList<ControlReply>> BroadcastAsync(string command, IReadOnlyDictionary<string, object?>? arguments = null, ControlOptions? options = null, CancellationToken ct = default);

    /// <summary>An inspector of the workers <paramref name="options"/> name (all when none).</summary>
    Inspector Inspect(ControlOptions? options = null) => new(this, options);

    /// <summary>Celery's <c>ping</c>: the workers that answered in time, by node name.</summary>
    async Task<IReadOnlyDictionary<string, ControlReply>> PingAsync(ControlOptions? options = null, CancellationToken ct = default) =>
        ControlClient.ByNode(await BroadcastAsync("ping", null, ControlClient.Replying(options), ct).ConfigureAwait(false));

    /// <summary>Celery's <c>revoke</c>: the workers skip these tasks when they come; with <paramref name="terminate"/> they also stop them if they run.</summary>
    Task<IReadOnlyList<ControlReply>> RevokeAsync(IEnumerable<string> taskIds, bool terminate = false, string? signal = null, ControlOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        return BroadcastAsync("revoke", ControlClient.Args(("task_id", taskIds.Cast<object?>().ToList()), ("terminate", terminate), ("signal", signal ?? "SIGTERM")), options, ct);
    }

    /// <summary>Celery's <c>rate_limit</c> (<c>"10/s"</c>, <c>"5/m"</c>; <see langword="null"/> removes the limit).</summary>
    Task<IReadOnlyList<ControlReply>> RateLimitAsync(string taskName, string? rateLimit, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("rate_limit", ControlClient.Args(("task_name", taskName), ("rate_limit", rateLimit)), options, ct);

    /// <summary>Celery's <c>time_limit</c>: a task's soft and hard limits in seconds (<see langword="null"/>: none).</summary>
    Task<IReadOnlyList<ControlReply>> TimeLimitAsync(string taskName, double? soft, double? hard = null, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("time_limit", ControlClient.Args(("task_name", taskName), ("soft", soft), ("hard", hard)), options, ct);

    /// <summary>Celery's <c>pool_grow</c>.</summary>
    Task<IReadOnlyList<ControlReply>> PoolGrowAsync(int n = 1, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("pool_grow", ControlClient.Args(("n", (long)n)), options, ct);

    /// <summary>Celery's <c>pool_shrink</c>.</summary>
    Task<IReadOnlyList<ControlReply>> PoolShrinkAsync(int n = 1, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("pool_shrink", ControlClient.Args(("n", (long)n)), options, ct);

    /// <summary>Celery's <c>add_consumer</c>: the workers also consume <paramref name="queue"/>.</summary>
    Task<IReadOnlyList<ControlReply>> AddConsumerAsync(string queue, string? exchange = null, string? exchangeType = null, string? routingKey = null, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("add_consumer", ControlClient.Args(("queue", queue), ("exchange", exchange), ("exchange_type", exchangeType), ("routing_key", routingKey)), options, ct);

    /// <summary>Celery's <c>cancel_consumer</c>: the workers stop consuming <paramref name="queue"/>.</summary>
    Task<IReadOnlyList<ControlReply>> CancelConsumerAsync(string queue, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("cancel_consumer", ControlClient.Args(("queue", queue)), options, ct);

    /// <summary>Celery's <c>shutdown</c>: the workers stop warm (Celery's do not reply).</summary>
    Task<IReadOnlyList<ControlReply>> ShutdownAsync(ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("shutdown", null, options, ct);
}
