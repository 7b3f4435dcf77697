namespace Celeriac.Beat;

/// <summary>
/// Where beat keeps its entries and their last runs, and the lease that makes exactly one beat send. Every method is
/// atomic in the store; a crash at any moment leaves it readable. Implementations: <see cref="MemoryBeatStore"/> (one
/// process), SQLite (next to the broker's file) and Redis.
/// </summary>
public interface IBeatStore : IAsyncDisposable
{
    /// <summary>Every entry with its state, enabled or not.</summary>
    ValueTask<IReadOnlyList<BeatEntry>> LoadAsync(CancellationToken ct = default);

    /// <summary>
    /// Adds an entry, or changes the definition of the one with its name. A new entry starts with the entry's
    /// <see cref="BeatEntry.Enabled"/> and <see cref="BeatEntry.LastRunAt"/>; an existing one keeps its own (so that a
    /// restart with the same code neither re-enables what an operator disabled nor forgets when it last ran).
    /// </summary>
    ValueTask SaveAsync(BeatEntry entry, CancellationToken ct = default);

    /// <summary>Removes an entry; false when there was none.</summary>
    ValueTask<bool> RemoveAsync(string name, CancellationToken ct = default);

    /// <summary>Enables or disables an entry; false when there is none.</summary>
    ValueTask<bool> SetEnabledAsync(string name, bool enabled, CancellationToken ct = default);

    /// <summary>Takes the lease for <paramref name="holder"/>, or renews it if it holds it; false while another holds it.</summary>
    ValueTask<bool> TryHoldLeaseAsync(string holder, TimeSpan duration, CancellationToken ct = default);

    /// <summary>Gives the lease up if <paramref name="holder"/> holds it (a warm stop lets another beat take over at once).</summary>
    ValueTask ReleaseLeaseAsync(string holder, CancellationToken ct = default);

    /// <summary>
    /// Records a run of <paramref name="name"/> at <paramref name="runAt"/>, only if <paramref name="holder"/> holds the
    /// lease and the entry's last run is still <paramref name="expectedLastRun"/>: the one step that decides a run is
    /// sent, so that two beats never send the same run. False when the lease or the entry moved on.
    /// </summary>
    ValueTask<bool> TryRecordRunAsync(string holder, string name, DateTimeOffset? expectedLastRun, DateTimeOffset runAt, CancellationToken ct = default);
}

/// <summary>A store in memory, for one process (tests, and an app that needs no persistence).</summary>
/// <param name="time">The clock leases expire by.</param>
public sealed class MemoryBeatStore(TimeProvider? time = null) : IBeatStore
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, BeatEntry> _entries = new(StringComparer.Ordinal);
    private string? _holder;
    private DateTimeOffset _leaseUntil;

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<BeatEntry>> LoadAsync(CancellationToken ct = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<BeatEntry>>([.. _entries.Values.OrderBy(e => e.Name, StringComparer.Ordinal)]);
        }
    }

    /// <inheritdoc />
    public ValueTask SaveAsync(BeatEntry entry, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_gate)
        {
            _entries[entry.Name] = _entries.TryGetValue(entry.Name, out BeatEntry? old)
                ? entry with { Enabled = old.Enabled, LastRunAt = old.LastRunAt, TotalRunCount = old.TotalRunCount }
                : entry;
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(string name, CancellationToken ct = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_entries.Remove(name));
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> SetEnabledAsync(string name, bool enabled, CancellationToken ct = default)
    {
        lock (_gate)
        {
            if (!_entries.TryGetValue(name, out BeatEntry? entry))
            {
                return ValueTask.FromResult(false);
            }

            _entries[name] = entry with { Enabled = enabled };
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> TryHoldLeaseAsync(string holder, TimeSpan duration, CancellationToken ct = default)
    {
        DateTimeOffset now = _time.GetUtcNow();
        lock (_gate)
        {
            if (_holder is not null && _holder != holder && _leaseUntil > now)
            {
                return ValueTask.FromResult(false);
            }

            _holder = holder;
            _leaseUntil = now + duration;
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    public ValueTask ReleaseLeaseAsync(string holder, CancellationToken ct = default)
    {
        lock (_gate)
        {
            if (_holder == holder)
            {
                _holder = null;
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<bool> TryRecordRunAsync(string holder, string name, DateTimeOffset? expectedLastRun, DateTimeOffset runAt, CancellationToken ct = default)
    {
        DateTimeOffset now = _time.GetUtcNow();
        lock (_gate)
        {
            if (_holder != holder || _leaseUntil <= now || !_entries.TryGetValue(name, out BeatEntry? entry) || entry.LastRunAt != expectedLastRun)
            {
                return ValueTask.FromResult(false);
            }

            _entries[name] = entry with { LastRunAt = runAt, TotalRunCount = entry.TotalRunCount + 1 };
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
