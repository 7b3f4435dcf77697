using Celeriac.Transport;

namespace Celeriac.Redis;

/// <summary>kombu's Redis transport (skeleton: being written).</summary>
public sealed class RedisTransport : ITransport
{
    /// <summary>Creates the transport.</summary>
    public RedisTransport(TransportOptions options) => throw new NotSupportedException("The Redis transport is being written. " + options?.Url);

    /// <inheritdoc />
    public ValueTask DeclareQueueAsync(QueueDeclaration queue, CancellationToken ct = default) => throw new NotSupportedException();

    /// <inheritdoc />
    public ValueTask PublishAsync(string exchange, string routingKey, IReadOnlyList<TransportMessage> messages, CancellationToken ct = default) => throw new NotSupportedException();

    /// <inheritdoc />
    public IAsyncEnumerable<Delivery> ConsumeAsync(ConsumeOptions options, CancellationToken ct = default) => throw new NotSupportedException();

    /// <inheritdoc />
    public ValueTask<IAsyncDisposable> SubscribeAsync(string exchange, Func<TransportMessage, ValueTask> handler, CancellationToken ct = default) => throw new NotSupportedException();

    /// <inheritdoc />
    public ValueTask<long> GetQueueLengthAsync(string queue, CancellationToken ct = default) => throw new NotSupportedException();

    /// <inheritdoc />
    public ValueTask<long> PurgeAsync(string queue, CancellationToken ct = default) => throw new NotSupportedException();

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
