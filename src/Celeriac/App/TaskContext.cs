using System.Text.Json;
using Celeriac.Protocol;

namespace Celeriac;

/// <summary>
/// What a running task knows about itself (Celery's <c>self.request</c>). Declare a parameter of this type
/// to receive it.
/// </summary>
public sealed class TaskContext
{
    private readonly Func<string, object?, CancellationToken, ValueTask>? _storeState;

    internal TaskContext(TaskMessage message, string queue, string hostname, CancellationToken cancellation, Func<string, object?, CancellationToken, ValueTask>? storeState = null)
    {
        Message = message;
        Queue = queue;
        Hostname = hostname;
        CancellationToken = cancellation;
        _storeState = storeState;
    }

    internal TaskMessage Message { get; }

    /// <summary>The task id.</summary>
    public string Id => Message.Headers.Id;

    /// <summary>The task name.</summary>
    public string Name => Message.Headers.Task;

    /// <summary>How many times it has been retried.</summary>
    public int Retries => Message.Headers.Retries;

    /// <summary>The id of the first task of the workflow.</summary>
    public string? RootId => Message.Headers.RootId;

    /// <summary>The id of the task that sent this one.</summary>
    public string? ParentId => Message.Headers.ParentId;

    /// <summary>The group it belongs to.</summary>
    public string? GroupId => Message.Headers.Group;

    /// <summary>When it was due.</summary>
    public DateTimeOffset? Eta => Message.Headers.Eta;

    /// <summary>When it expires.</summary>
    public DateTimeOffset? Expires => Message.Headers.Expires;

    /// <summary>The typed headers it came with.</summary>
    public TaskHeaders Headers => Message.Headers;

    /// <summary>The positional arguments as sent.</summary>
    public JsonElement Args => Message.Args;

    /// <summary>The keyword arguments as sent.</summary>
    public JsonElement Kwargs => Message.Kwargs;

    /// <summary>The queue it was taken from.</summary>
    public string Queue { get; }

    /// <summary>The exchange it was published to.</summary>
    public string Exchange => Message.Transport.Exchange;

    /// <summary>The routing key it was published with.</summary>
    public string RoutingKey => Message.Transport.RoutingKey;

    /// <summary>Where the client waits for replies.</summary>
    public string? ReplyTo => Message.Transport.ReplyTo;

    /// <summary>The worker's node name.</summary>
    public string Hostname { get; }

    /// <summary>Cancelled when the task is revoked with terminate, times out, or the worker stops cold.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>
    /// Stores a state for this task while it runs, as Celery's <c>update_state(state=..., meta=...)</c>: a custom state
    /// such as <c>"PROGRESS"</c> with <paramref name="meta"/> (any JSON-serializable value, e.g.
    /// <c>new { current = 3, total = 10 }</c>) that clients, Python ones too, read while the task runs. The task's
    /// final state replaces it. Stored even when the task ignores its result, as in Celery.
    /// </summary>
    public ValueTask UpdateStateAsync(string state, object? meta = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(state);
        return _storeState is null ? ValueTask.CompletedTask : _storeState(state, meta, ct);
    }
}
