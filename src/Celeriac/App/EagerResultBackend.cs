using System.Collections.Concurrent;
using Celeriac.Results;

namespace Celeriac;

/// <summary>
/// Where eager runs keep their results: a store of the app's own, dropped with it. Celery's EagerResult holds its value
/// without a backend; keeping the documents in a backend lets every result type (groups, chains' parents,
/// <c>app.AsyncResult(id)</c>) read them as it reads any other, with no broker or configured backend needed.
/// </summary>
internal sealed class EagerResultBackend(ResultBackendOptions options) : KeyValueResultBackend(options)
{
    private readonly ConcurrentDictionary<string, byte[]> _values = new(StringComparer.Ordinal);
    private readonly KeyWaiterTable _waiters = new();

    protected override ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct) =>
        ValueTask.FromResult(_values.TryGetValue(key, out byte[]? value) ? value : null);

    protected override ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct)
    {
        _values[key] = value;
        Wake(key);
        return ValueTask.CompletedTask;
    }

    protected override ValueTask DeleteValueAsync(string key, CancellationToken ct)
    {
        _values.TryRemove(key, out _);
        return ValueTask.CompletedTask;
    }

    protected override ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct)
    {
        byte[] updated = _values.AddOrUpdate(key, static _ => BitConverter.GetBytes(1L), static (_, old) => BitConverter.GetBytes(BitConverter.ToInt64(old) + 1));
        return ValueTask.FromResult(BitConverter.ToInt64(updated));
    }

    protected override KeyWaiterTable Waiters => _waiters;
}
