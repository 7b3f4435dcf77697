using System.Collections.Concurrent;
using Celeriac.Transport;

namespace Celeriac.Tests.Support;

/// <summary>A transport that hands everything to another and keeps what was published, in order.</summary>
internal sealed class RecordingTransport(ITransport inner) : ITransport
{
    public ConcurrentQueue<(string Exchange, string RoutingKey, TransportMessage Message)> Published { get; } = new();

    public ValueTask DeclareQueueAsync(QueueDeclaration queue, CancellationToken ct = default) => inner.DeclareQueueAsync(queue, ct);

    public ValueTask PublishAsync(string exchange, string routingKey, IReadOnlyList<TransportMessage> messages, CancellationToken ct = default)
    {
        foreach (TransportMessage m in messages)
        {
            Published.Enqueue((exchange, routingKey, m));
        }

        return inner.PublishAsync(exchange, routingKey, messages, ct);
    }

    public IAsyncEnumerable<Delivery> ConsumeAsync(ConsumeOptions options, CancellationToken ct = default) => inner.ConsumeAsync(options, ct);

    public ValueTask<IAsyncDisposable> SubscribeAsync(string exchange, Func<TransportMessage, ValueTask> handler, SubscriberBinding? queue = null, CancellationToken ct = default) =>
        inner.SubscribeAsync(exchange, handler, queue, ct);

    public ValueTask<long> GetQueueLengthAsync(string queue, CancellationToken ct = default) => inner.GetQueueLengthAsync(queue, ct);

    public ValueTask<long> PurgeAsync(string queue, CancellationToken ct = default) => inner.PurgeAsync(queue, ct);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
