using System.Collections.Concurrent;
using Celeriac.Transport;

namespace Celeriac.Results;

/// <summary>
/// The keys that result waiters wait on, each with a pulse that a write of the key fires. Entries are
/// counted: a key stays while anyone waits on it and goes with its last waiter, so waits whose result was
/// written elsewhere (another process) leave nothing behind.
/// </summary>
/// <remarks>
/// A <see cref="KeyValueResultBackend"/> that can tell when a key was written returns one from
/// <see cref="KeyValueResultBackend.Waiters"/>; <see cref="KeyValueResultBackend.WaitAsync"/> registers and
/// removes the waiters, and the store wakes them with <c>Wake(key)</c>. Share one table between every backend
/// instance on the same store in a process (as the SQLite backend does per file), so that a write through one
/// instance wakes waiters on another. A store told of other processes' writes only in bulk can read
/// <see cref="Keys"/> to find which of them to re-read.
/// </remarks>
public sealed class KeyWaiterTable
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Whether nobody waits (a store's change watcher can stop until someone does).</summary>
    public bool IsEmpty => _entries.IsEmpty;

    /// <summary>The keys waited on now (a snapshot is safe to enumerate while waiters come and go).</summary>
    public ICollection<string> Keys => _entries.Keys;

    /// <summary>Registers a waiter of <paramref name="key"/>.</summary>
    internal bool Enter(string key)
    {
        lock (_gate)
        {
            if (!_entries.TryGetValue(key, out Entry? entry))
            {
                entry = new Entry();
                _entries[key] = entry;
            }

            return ++entry.Count == 1;
        }
    }

    /// <summary>Removes a waiter of <paramref name="key"/>.</summary>
    internal bool Exit(string key)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue(key, out Entry? entry) && --entry.Count == 0)
            {
                _entries.TryRemove(key, out _);
                return true;
            }

            return false;
        }
    }

    /// <summary>A task that completes at the next write of <paramref name="key"/> (at once if nobody entered).</summary>
    internal Task Changed(string key) => _entries.TryGetValue(key, out Entry? entry) ? entry.Pulse.WaitAsync() : Task.CompletedTask;

    /// <summary>Wakes the waiters of <paramref name="key"/>, if any.</summary>
    internal void Wake(string key)
    {
        if (_entries.TryGetValue(key, out Entry? entry))
        {
            entry.Pulse.Pulse();
        }
    }

    private sealed class Entry
    {
        public AsyncPulse Pulse { get; } = new();

        public int Count { get; set; }
    }
}
