namespace Celeriac.Dashboard.Store;

/// <summary>
/// A store in the process's memory (<c>memory://</c>): nothing survives a restart. For tests and for a dashboard that
/// needs no history; bounded like the others by <see cref="PruneAsync"/>.
/// </summary>
public sealed class MemoryDashboardStore : IDashboardStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, DashboardTask> _tasks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<TaskEventRecord>> _events = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DashboardWorker> _workers = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public ValueTask WriteAsync(DashboardBatch batch, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        lock (_gate)
        {
            foreach (DashboardTask task in batch.Tasks)
            {
                _tasks[task.Uuid] = _tasks.TryGetValue(task.Uuid, out DashboardTask? old) ? Merge(old, task) : task;
            }

            foreach (DashboardWorker worker in batch.Workers)
            {
                _workers[worker.Hostname] = worker;
            }

            foreach (TaskEventRecord e in batch.Events)
            {
                if (!_events.TryGetValue(e.Uuid, out List<TaskEventRecord>? list))
                {
                    _events[e.Uuid] = list = [];
                }

                list.Add(e);
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>The update rule every store follows: the new state and times, and any field the new one lacks kept from the old.</summary>
    internal static DashboardTask Merge(DashboardTask old, DashboardTask update) => update with
    {
        Name = update.Name ?? old.Name,
        Sent = update.Sent ?? old.Sent,
        Received = update.Received ?? old.Received,
        Started = update.Started ?? old.Started,
        Succeeded = update.Succeeded ?? old.Succeeded,
        Failed = update.Failed ?? old.Failed,
        Retried = update.Retried ?? old.Retried,
        Revoked = update.Revoked ?? old.Revoked,
        Rejected = update.Rejected ?? old.Rejected,
        Runtime = update.Runtime ?? old.Runtime,
        Args = update.Args ?? old.Args,
        Kwargs = update.Kwargs ?? old.Kwargs,
        Result = update.Result ?? old.Result,
        Exception = update.Exception ?? old.Exception,
        Traceback = update.Traceback ?? old.Traceback,
        Worker = update.Worker ?? old.Worker,
        Retries = update.Retries ?? old.Retries,
        Eta = update.Eta ?? old.Eta,
        Expires = update.Expires ?? old.Expires,
        RoutingKey = update.RoutingKey ?? old.RoutingKey,
        Exchange = update.Exchange ?? old.Exchange,
        RootId = update.RootId ?? old.RootId,
        ParentId = update.ParentId ?? old.ParentId,
        Client = update.Client ?? old.Client,
        RetryOf = update.RetryOf ?? old.RetryOf,
    };

    /// <inheritdoc />
    public ValueTask<DashboardTask?> GetTaskAsync(string uuid, CancellationToken ct = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_tasks.GetValueOrDefault(uuid));
        }
    }

    /// <inheritdoc />
    public ValueTask<TaskPage> QueryTasksAsync(TaskQuery query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        (string field, bool descending) = query.Sort();
        List<DashboardTask> matches;
        lock (_gate)
        {
            matches = [.. _tasks.Values.Where(t => Filter(query, t))];
        }

        return ValueTask.FromResult(new TaskPage(matches.Count, [.. Sorted(matches, field, descending).Skip(Math.Max(0, query.Offset)).Take(Math.Max(0, query.Limit))]));
    }

    /// <summary>The order every store lists tasks in: by a field of <see cref="TaskQuery.SortFields"/>, then by id.</summary>
    internal static IOrderedEnumerable<DashboardTask> Sorted(IEnumerable<DashboardTask> tasks, string field, bool descending)
    {
        Func<DashboardTask, object?> key = SortKey(field);
        var comparer = Comparer<object?>.Create(CompareKeys);
        return descending
            ? tasks.OrderByDescending(key, comparer).ThenByDescending(t => t.Uuid, StringComparer.Ordinal)
            : tasks.OrderBy(key, comparer).ThenBy(t => t.Uuid, StringComparer.Ordinal);
    }

    /// <summary>Nulls sort first ascending (last descending), as SQL's <c>NULLS FIRST</c> for ascending.</summary>
    private static int CompareKeys(object? a, object? b) => (a, b) switch
    {
        (null, null) => 0,
        (null, _) => -1,
        (_, null) => 1,
        (string x, string y) => string.CompareOrdinal(x, y),
        (double x, double y) => x.CompareTo(y),
        (long x, long y) => x.CompareTo(y),
        _ => 0,
    };

    internal static bool Filter(TaskQuery q, DashboardTask t) =>
        (q.Name is null || t.Name == q.Name)
        && (q.Worker is null || t.Worker == q.Worker)
        && (q.State is null || t.State == q.State)
        && (q.ReceivedStart is null || t.Received is null || t.Received >= q.ReceivedStart)
        && (q.ReceivedEnd is null || t.Received is null || t.Received <= q.ReceivedEnd)
        && (q.ParentId is null || t.ParentId == q.ParentId)
        && (q.RetryOf is null || t.RetryOf == q.RetryOf)
        && (q.Search is null || q.Search.Matches(t));

    private static Func<DashboardTask, object?> SortKey(string field) => field switch
    {
        "name" => t => t.Name,
        "state" => t => t.State,
        "received" => t => t.Received,
        "started" => t => t.Started,
        "succeeded" => t => t.Succeeded,
        "failed" => t => t.Failed,
        "sent" => t => t.Sent,
        "runtime" => t => t.Runtime,
        "worker" => t => t.Worker,
        "uuid" => t => t.Uuid,
        "retries" => t => t.Retries,
        _ => t => t.Timestamp,
    };

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<TaskEventRecord>> GetEventsAsync(string uuid, int limit = 1000, CancellationToken ct = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<TaskEventRecord>>(_events.TryGetValue(uuid, out List<TaskEventRecord>? list) ? [.. list.Take(limit)] : []);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<DashboardWorker>> GetWorkersAsync(CancellationToken ct = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<DashboardWorker>>([.. _workers.Values.OrderBy(w => w.Hostname, StringComparer.Ordinal)]);
        }
    }

    /// <inheritdoc />
    public ValueTask<DashboardStats> GetStatsAsync(double since, CancellationToken ct = default)
    {
        var stats = new StatsBuilder(since);
        lock (_gate)
        {
            foreach (DashboardTask t in _tasks.Values)
            {
                stats.Add(t.Name, t.Received, t.Succeeded, t.Failed, t.Retried, t.Revoked, t.Runtime);
            }
        }

        return ValueTask.FromResult(stats.Build());
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<string>> GetTaskNamesAsync(CancellationToken ct = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<string>>([.. _tasks.Values.Select(t => t.Name).OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)]);
        }
    }

    /// <inheritdoc />
    public ValueTask<long> PruneAsync(int maxTasks, double olderThan, CancellationToken ct = default)
    {
        lock (_gate)
        {
            var doomed = _tasks.Values.Where(t => t.Timestamp < olderThan).Select(t => t.Uuid).ToList();
            int over = _tasks.Count - doomed.Count - maxTasks;
            if (over > 0)
            {
                doomed.AddRange(_tasks.Values.Where(t => t.Timestamp >= olderThan)
                    .OrderBy(t => t.Timestamp).ThenBy(t => t.Uuid, StringComparer.Ordinal).Take(over).Select(t => t.Uuid));
            }

            foreach (string uuid in doomed)
            {
                _tasks.Remove(uuid);
                _events.Remove(uuid);
            }

            return ValueTask.FromResult((long)doomed.Count);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
