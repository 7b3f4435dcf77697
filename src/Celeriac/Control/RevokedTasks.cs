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

    /// <summary>The held ids and when each was revoked, as JSON: <c>{"revoked": {"&lt;id&gt;": "&lt;ISO-8601 UTC&gt;"}}</c>.</summary>
    public byte[] Save()
    {
        lock (_gate)
        {
            return Protocol.JsonBuffers.Write(_ids, static (w, ids) =>
            {
                w.WriteStartObject();
                w.WriteStartObject("revoked");
                foreach (KeyValuePair<string, DateTimeOffset> kv in ids)
                {
                    w.WriteString(kv.Key, Protocol.CeleryJson.FormatIso(kv.Value));
                }

                w.WriteEndObject();
                w.WriteEndObject();
            });
        }
    }

    /// <summary>Adds the ids <see cref="Save"/> wrote, each with its own time, dropping those already expired.</summary>
    /// <exception cref="System.Text.Json.JsonException">The document is not what <see cref="Save"/> writes.</exception>
    public int Load(ReadOnlySpan<byte> json)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json.ToArray());
        if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object
            || !doc.RootElement.TryGetProperty("revoked", out System.Text.Json.JsonElement revoked)
            || revoked.ValueKind != System.Text.Json.JsonValueKind.Object)
        {
            throw new System.Text.Json.JsonException("expected {\"revoked\": {\"<id>\": \"<time>\"}}");
        }

        var entries = new List<(string Id, DateTimeOffset Added)>();
        foreach (System.Text.Json.JsonProperty p in revoked.EnumerateObject())
        {
            if (p.Value.ValueKind != System.Text.Json.JsonValueKind.String
                || !DateTimeOffset.TryParse(p.Value.GetString(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out DateTimeOffset added))
            {
                throw new System.Text.Json.JsonException($"the time of revoked id '{p.Name}' is not an ISO-8601 date");
            }

            entries.Add((p.Name, added));
        }

        return Merge(entries);
    }

    /// <summary>
    /// Adds ids another worker or a previous run held, each with the time it was revoked (mingle's <c>hello</c>); an id
    /// already held keeps the later time, and expired ones are dropped. Returns how many ids are held.
    /// </summary>
    public int Merge(IEnumerable<(string Id, DateTimeOffset Added)> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        DateTimeOffset now = time.GetUtcNow();
        lock (_gate)
        {
            foreach ((string id, DateTimeOffset added) in entries.OrderBy(e => e.Added))
            {
                if (now - added < Expiry && (!_ids.TryGetValue(id, out DateTimeOffset held) || held < added))
                {
                    _ids[id] = added;
                    _order.Enqueue((id, added));
                }
            }

            Purge(now);
            return _ids.Count;
        }
    }

    /// <summary>The held ids and when each was revoked, oldest first.</summary>
    public IReadOnlyList<KeyValuePair<string, DateTimeOffset>> Snapshot()
    {
        lock (_gate)
        {
            Purge(time.GetUtcNow());
            return [.. _ids.OrderBy(kv => kv.Value)];
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
