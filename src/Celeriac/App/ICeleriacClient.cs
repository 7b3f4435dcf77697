namespace Celeriac;

/// <summary>
/// What a producer needs from Celeriac: send calls (by name or typed), read results, revoke, and send control
/// commands. <see cref="CeleriacApp"/> implements it and <c>AddCeleriac</c> registers it, so that code that only sends
/// work can take this interface and a unit test can hand it a plain fake.
/// </summary>
public interface ICeleriacClient
{
    /// <summary>Sends a call of a task by name (Celery's <c>send_task</c>); the task may live in another process or language.</summary>
    Task<AsyncResult> SendTaskAsync(string name, IReadOnlyList<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null, ApplyOptions? options = null, CancellationToken ct = default);

    /// <summary>Sends a call whose result is read as <typeparamref name="TResult"/> (what generated typed task handles call).</summary>
    async Task<AsyncResult<TResult>> SendTaskAsync<TResult>(string name, IReadOnlyList<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null, ApplyOptions? options = null, CancellationToken ct = default)
    {
        AsyncResult sent = await SendTaskAsync(name, args, kwargs, options, ct).ConfigureAwait(false);
        return sent as AsyncResult<TResult> ?? new AsyncResult<TResult>(sent);
    }

    /// <summary>Sends a signature of any shape: a task, a chain, a group (a <see cref="GroupResult"/>), a chord.</summary>
    Task<AsyncResult> ApplyAsync(Signature signature, IEnumerable<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null, ApplyOptions? options = null, CancellationToken ct = default);

    /// <summary>A handle on a task's result by id.</summary>
    AsyncResult AsyncResult(string taskId);

    /// <summary>A saved group's result by id (Celery's <c>GroupResult.restore</c>), or <see langword="null"/> when none is saved.</summary>
    Task<GroupResult?> RestoreGroupAsync(string groupId, CancellationToken ct = default);

    /// <summary>Revokes tasks by id on every worker; with <paramref name="terminate"/> a running one is cancelled.</summary>
    Task RevokeAsync(IEnumerable<string> taskIds, bool terminate, CancellationToken ct = default);

    /// <summary>Changes a task's rate limit on running workers (<see langword="null"/> removes it).</summary>
    Task SetRateLimitAsync(string taskName, string? rateLimit, IReadOnlyList<string>? destination = null, CancellationToken ct = default);
}
