using Celeriac.Results;

namespace Celeriac.Redis;

/// <summary>Celery's Redis result backend (skeleton: being written).</summary>
public sealed class RedisResultBackend : KeyValueResultBackend
{
    /// <summary>Creates the backend.</summary>
    public RedisResultBackend(ResultBackendOptions options) : base(options) => throw new NotSupportedException("The Redis result backend is being written.");

    /// <inheritdoc />
    protected override ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override ValueTask DeleteValueAsync(string key, CancellationToken ct) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct) => throw new NotSupportedException();
}
