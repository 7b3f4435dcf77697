namespace Celeriac.Dashboard.Store;

/// <summary>
/// Where the dashboard keeps tasks, their events and workers, so that a restarted dashboard shows what happened before.
/// Writes come in batches (one transaction each) from the ingestion service; reads come from the HTTP endpoints at the
/// same time. Bounded by <see cref="PruneAsync"/>, which the ingestion service calls periodically.
/// </summary>
public interface IDashboardStore : IAsyncDisposable
{
    /// <summary>
    /// Stores a batch in one transaction: each task is inserted or updated (a null field keeps the stored value, so an
    /// event that carries only a state does not erase the name and arguments), each worker inserted or replaced, and
    /// each event appended to its task's timeline.
    /// </summary>
    ValueTask WriteAsync(DashboardBatch batch, CancellationToken ct = default);

    /// <summary>A task by id, or null.</summary>
    ValueTask<DashboardTask?> GetTaskAsync(string uuid, CancellationToken ct = default);

    /// <summary>The tasks that match a query, sorted and paged, with how many matched in all.</summary>
    ValueTask<TaskPage> QueryTasksAsync(TaskQuery query, CancellationToken ct = default);

    /// <summary>A task's events in the order they were stored (at most <paramref name="limit"/>, the oldest first).</summary>
    ValueTask<IReadOnlyList<TaskEventRecord>> GetEventsAsync(string uuid, int limit = 1000, CancellationToken ct = default);

    /// <summary>Every worker stored, by hostname.</summary>
    ValueTask<IReadOnlyList<DashboardWorker>> GetWorkersAsync(CancellationToken ct = default);

    /// <summary>Counts per minute and state, and runtime percentiles per task name, for tasks since <paramref name="since"/> (unix seconds).</summary>
    ValueTask<DashboardStats> GetStatsAsync(double since, CancellationToken ct = default);

    /// <summary>The task names stored, sorted (Flower's task types).</summary>
    ValueTask<IReadOnlyList<string>> GetTaskNamesAsync(CancellationToken ct = default);

    /// <summary>
    /// Removes tasks (and their events) older than <paramref name="olderThan"/> (by <see cref="DashboardTask.Timestamp"/>,
    /// unix seconds) and, beyond that, all but the newest <paramref name="maxTasks"/>. Returns how many tasks went.
    /// </summary>
    ValueTask<long> PruneAsync(int maxTasks, double olderThan, CancellationToken ct = default);
}

/// <summary>A task query: Flower's filters and search, a sort and a page.</summary>
public sealed record TaskQuery
{
    /// <summary>Flower's search (parsed), or null for every task.</summary>
    public TaskSearch? Search { get; init; }

    /// <summary>Only tasks of this name (exact).</summary>
    public string? Name { get; init; }

    /// <summary>Only tasks on this worker (exact).</summary>
    public string? Worker { get; init; }

    /// <summary>Only tasks in this state (exact).</summary>
    public string? State { get; init; }

    /// <summary>Only tasks received at or after this time (unix seconds); tasks not received yet pass, as in Flower.</summary>
    public double? ReceivedStart { get; init; }

    /// <summary>Only tasks received at or before this time (unix seconds).</summary>
    public double? ReceivedEnd { get; init; }

    /// <summary>Only the children of this task.</summary>
    public string? ParentId { get; init; }

    /// <summary>Only the dashboard retries of this task.</summary>
    public string? RetryOf { get; init; }

    /// <summary>A field of <see cref="SortFields"/>, with a leading <c>-</c> for descending; null: the newest first.</summary>
    public string? SortBy { get; init; }

    /// <summary>Tasks skipped. <value>0</value></summary>
    public int Offset { get; init; }

    /// <summary>The most tasks returned. <value>100</value></summary>
    public int Limit { get; init; } = 100;

    /// <summary>The fields a query can sort by.</summary>
    public static IReadOnlyList<string> SortFields { get; } =
        ["name", "state", "received", "started", "succeeded", "failed", "sent", "timestamp", "runtime", "worker", "uuid", "retries"];

    /// <summary>The sort field and direction, or an <see cref="ArgumentException"/> naming the fields allowed.</summary>
    public (string Field, bool Descending) Sort()
    {
        if (string.IsNullOrEmpty(SortBy))
        {
            return ("timestamp", true);
        }

        bool descending = SortBy.StartsWith('-');
        string field = SortBy.TrimStart('-');
        return SortFields.Contains(field)
            ? (field, descending)
            : throw new ArgumentException($"cannot sort by '{field}': sort_by takes one of {string.Join(", ", SortFields)}, with a leading '-' for descending");
    }
}
