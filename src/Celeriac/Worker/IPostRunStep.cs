using Celeriac.Concurrency;
using Celeriac.Protocol;

namespace Celeriac.Worker;

/// <summary>
/// A step the worker runs after each task's outcome, in <see cref="Order"/>, before the message is settled: storing the
/// result is one (order 0); sending callbacks and chord parts, and events, are others. Register one with
/// <see cref="CeleriacWorker(CeleriacApp, IEnumerable{IPostRunStep}?)"/> or in DI as an <see cref="IPostRunStep"/>. A
/// step that throws is logged and the next still runs; the message is settled all the same.
/// </summary>
public interface IPostRunStep
{
    /// <summary>Where the step runs among the others, lowest first; the result is stored at 0. <value>0</value></summary>
    int Order => 0;

    /// <summary>Acts on a finished task. Runs on the worker's hot path: return a completed task when there is nothing to wait for.</summary>
    ValueTask AfterRunAsync(FinishedTask task, CancellationToken ct);
}

/// <summary>How the worker settles a task's message once its post-run steps are done.</summary>
public enum Settlement
{
    /// <summary>Nothing left to do (acked as the task started, or given back already).</summary>
    None,

    /// <summary>Removed from the broker.</summary>
    Ack,

    /// <summary>Dropped (dead-lettered where the queue has a dead-letter exchange).</summary>
    Reject,

    /// <summary>Given back to the queue for another worker.</summary>
    Requeue,
}

/// <summary>A task whose run has ended, as the post-run steps see it.</summary>
public sealed class FinishedTask
{
    /// <summary>The task's message.</summary>
    public required TaskMessage Message { get; init; }

    /// <summary>The queue it was taken from.</summary>
    public required string Queue { get; init; }

    /// <summary>How its run ended.</summary>
    public required TaskOutcome Outcome { get; init; }

    /// <summary>Whether its result is stored (false for ignored results).</summary>
    public required bool StoreResult { get; init; }

    /// <summary>Whether its errors are stored even when its result is ignored.</summary>
    public required bool StoreErrors { get; init; }

    /// <summary>How its message will be settled after the steps.</summary>
    public required Settlement Settlement { get; init; }

    /// <summary>The worker's node name.</summary>
    public required string Hostname { get; init; }

    /// <summary>The task id.</summary>
    public string Id => Message.Headers.Id;

    /// <summary>Its run span and start, when something listened as it was taken; the telemetry step ends the span.</summary>
    internal RequestTelemetry? Telemetry { get; init; }

    private List<AsyncResult>? _sent;

    /// <summary>Records a task sent on this one's behalf after it ran (a callback, the next step of its chain), for its result's <c>children</c>.</summary>
    internal void AddChild(AsyncResult child) => (_sent ??= []).Add(child);

    /// <summary>
    /// The stored result's <c>children</c>: the tasks it sent while it ran, then those sent for it after, as Celery's
    /// result tuples; <see langword="null"/> for none.
    /// </summary>
    internal byte[]? ChildrenJson()
    {
        if (_sent is null)
        {
            return Outcome.Children;
        }

        var list = Outcome.Children is { } ran ? (System.Text.Json.Nodes.JsonArray)System.Text.Json.Nodes.JsonNode.Parse(ran)! : [];
        foreach (AsyncResult child in _sent)
        {
            list.Add(child.AsTuple());
        }

        return System.Text.Encoding.UTF8.GetBytes(list.ToJsonString());
    }

    /// <summary>The task name.</summary>
    public string Name => Message.Headers.Task;
}
