using System.Collections.Concurrent;

namespace Celeriac.Results;

/// <summary>
/// An in-process result backend (<c>memory://</c>, or <c>memory://name</c>): every backend with the same
/// name in one process shares its results. Waiting is woken by each write, never polled.
/// </summary>
public sealed class MemoryResultBackend : KeyValueResultBackend
{
    private static readonly ConcurrentDictionary<string, Store> s_stores = new(StringComparer.Ordinal);
    private readonly Store _store;

    /// <summary>Creates the backend named by the URL's host.</summary>
    public MemoryResultBackend(ResultBackendOptions options) : base(options)
    {
        _store = s_stores.GetOrAdd(options.Url.Host, static _ => new Store());
    }

    /// <inheritdoc />
    protected override ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct)
    {
        if (_store.Values.TryGetValue(key, out Entry entry))
        {
            if (entry.ExpiresAt is null || entry.ExpiresAt > Options.TimeProvider.GetUtcNow())
            {
                return ValueTask.FromResult<byte[]?>(entry.Value);
            }

            _store.Values.TryRemove(new KeyValuePair<string, Entry>(key, entry));
        }

        return ValueTask.FromResult<byte[]?>(null);
    }

    /// <inheritdoc />
    protected override ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct)
    {
        _store.Values[key] = new Entry(value, expiry is { } e ? Options.TimeProvider.GetUtcNow() + e : null);
        Wake(key);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    protected override ValueTask DeleteValueAsync(string key, CancellationToken ct)
    {
        _store.Values.TryRemove(key, out _);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    protected override ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct)
    {
        Entry updated = _store.Values.AddOrUpdate<DateTimeOffset?>(
            key,
            static (_, e) => new Entry(BitConverter.GetBytes(1L), e),
            static (_, old, e) => new Entry(BitConverter.GetBytes(BitConverter.ToInt64(old.Value) + 1), e),
            expiry is { } x ? Options.TimeProvider.GetUtcNow() + x : null);
        return ValueTask.FromResult(BitConverter.ToInt64(updated.Value));
    }

    /// <inheritdoc />
    protected override KeyWaiterTable Waiters => _store.Waiters;

    private readonly record struct Entry(byte[] Value, DateTimeOffset? ExpiresAt);

    private sealed class Store
    {
        public ConcurrentDictionary<string, Entry> Values { get; } = new(StringComparer.Ordinal);

        public KeyWaiterTable Waiters { get; } = new();
    }
}
