namespace Celeriac.Control;

/// <summary>
/// The ids a worker was told to revoke, as Celery's <c>worker.state.revoked</c> (a LimitedSet of at most
/// 50,000 ids, each kept 3 hours): a revoked task that arrives later is skipped and stored as REVOKED.
/// </summary>
public sealed class RevokedTasks(TimeProvider time)
{
    /// <summary>Celery's <c>REVOKES_MAX</c>.</summary>
    public const int MaxCount = 50_000;

    /// <summary>Celery's <c>REVOKE_EXPIRES</c>.</summary>
    public static readonly TimeSpan Expiry = TimeSpan.FromSeconds(10_800);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, DateTimeOffset> _ids = new(StringComparer.Ordinal);
    private readonly Queue<(string Id, DateTimeOffset Added)> _order = new();

    /// <summary>How many ids are held.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _ids.Count;
            }
        }
    }

    /// <summary>Adds ids (again: their 3 hours start over).</summary>
    public void Add(IEnumerable<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        DateTimeOffset now = time.GetUtcNow();
        lock (_gate)
        {
            foreach (string id in ids)
            {
                _ids[id] = now;
                _order.Enqueue((id, now));
            }

            Purge(now);
        }
    }

    /// <summary>Whether <paramref name="id"/> was revoked (and not yet forgotten).</summary>
    public bool Contains(string id)
    {
        lock (_gate)
        {
            return _ids.TryGetValue(id, out DateTimeOffset added) && time.GetUtcNow() - added < Expiry;
        }
    }

    private void Purge(DateTimeOffset now)
    {
        // Oldest first; an id re-added later has a newer entry and keeps its place in the dictionary.
        while (_order.TryPeek(out (string Id, DateTimeOffset Added) oldest) && (_ids.Count > MaxCount || now - oldest.Added >= Expiry || _order.Count > 2 * MaxCount))
        {
            _order.Dequeue();
            if (_ids.TryGetValue(oldest.Id, out DateTimeOffset added) && added == oldest.Added)
            {
                _ids.Remove(oldest.Id);
            }
        }
    }
}
