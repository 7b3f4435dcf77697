using Celeriac.Dashboard.Ingestion;
using Celeriac.Dashboard.Store;

namespace Celeriac.Dashboard.Http;

/// <summary>
/// Re-sends a task that failed (what Flower's users asked for since flower#17): its name, its args and kwargs read back
/// from the reprs its events carried, its queue (the routing key it was sent with, when an event told it), as a new
/// task whose message carries a <c>retry_of</c> header and which the dashboard links to the old one.
/// </summary>
internal static class Retry
{
    /// <summary>The most tasks one "retry all" re-sends.</summary>
    public const int MaxPerCall = 1_000;

    private static readonly HashSet<string> s_retriable = new(StringComparer.Ordinal) { TaskStates.Failure, TaskStates.Revoked, "REJECTED" };

    public static async Task<string> SendAsync(CeleriacApp app, DashboardIngestor ingestor, DashboardTask task, CancellationToken ct)
    {
        if (!s_retriable.Contains(task.State))
        {
            throw new BadRequestException($"only a failed, revoked or rejected task can be retried; task '{task.Uuid}' is {task.State}");
        }

        if (task.Name is not { Length: > 0 } name)
        {
            throw new BadRequestException($"task '{task.Uuid}' has no name in its events, so it cannot be re-sent");
        }

        List<object?> args = [];
        if (!string.IsNullOrWhiteSpace(task.Args))
        {
            args = PyLiteral.TryParse(task.Args, out object? parsed) && parsed is List<object?> list
                ? list
                : throw new BadRequestException($"the arguments of task '{task.Uuid}' cannot be read back from their repr {task.Args} (truncated, or not plain values)");
        }

        Dictionary<string, object?> kwargs = [];
        if (!string.IsNullOrWhiteSpace(task.Kwargs))
        {
            kwargs = PyLiteral.TryParse(task.Kwargs, out object? parsed) && parsed is Dictionary<string, object?> map
                ? map
                : throw new BadRequestException($"the keyword arguments of task '{task.Uuid}' cannot be read back from their repr {task.Kwargs}");
        }

        string newId = Guid.NewGuid().ToString();
        ingestor.RecordRetry(newId, task.Uuid, task);
        await app.SendTaskAsync(name, args, kwargs, new ApplyOptions
        {
            TaskId = newId,
            Queue = string.IsNullOrEmpty(task.RoutingKey) ? null : task.RoutingKey,
            Headers = new Dictionary<string, object?>(StringComparer.Ordinal) { ["retry_of"] = task.Uuid },
            ParentId = task.ParentId,
            RootId = task.RootId,
        }, ct).ConfigureAwait(false);
        return newId;
    }
}
