using Celeriac.Protocol;
using Celeriac.Transport;

namespace Celeriac.Testing;

/// <summary>
/// The harness's broker: an in-memory one that also records every task message published (calls, a chain's next step,
/// a chord's body, callbacks, retries), whichever part of the app sent it.
/// </summary>
internal sealed class HarnessTransport(ITransport inner, CeleriacTestHarness harness) : ITransport, ICatchUpTransport
{
    public ValueTask DeclareQueueAsync(QueueDeclaration queue, CancellationToken ct = default) => inner.DeclareQueueAsync(queue, ct);

    public async ValueTask PublishAsync(string exchange, string routingKey, IReadOnlyList<TransportMessage> messages, CancellationToken ct = default)
    {
        // Recorded before the publish: once the broker has it a worker may finish it, and "sent" must come first.
        foreach (TransportMessage message in messages)
        {
            if (message.Headers.ContainsKey("task") && TaskMessage.TryDecode(message, out TaskMessage? task, out _, out _, out _))
            {
                using (task)
                {
                    harness.OnSent(task!, routingKey.Length > 0 ? routingKey : exchange);
                }
            }
        }

        await inner.PublishAsync(exchange, routingKey, messages, ct).ConfigureAwait(false);
    }

    public IAsyncEnumerable<Delivery> ConsumeAsync(ConsumeOptions options, CancellationToken ct = default) => inner.ConsumeAsync(options, ct);

    public ValueTask CatchUpAsync(CancellationToken ct = default) => inner is ICatchUpTransport catchUp ? catchUp.CatchUpAsync(ct) : ValueTask.CompletedTask;

    public ValueTask<IAsyncDisposable> SubscribeAsync(string exchange, Func<TransportMessage, ValueTask> handler, SubscriberBinding? queue = null, CancellationToken ct = default) =>
        inner.SubscribeAsync(exchange, handler, queue, ct);

    public ValueTask<long> GetQueueLengthAsync(string queue, CancellationToken ct = default) => inner.GetQueueLengthAsync(queue, ct);

    public ValueTask<long> PurgeAsync(string queue, CancellationToken ct = default) => inner.PurgeAsync(queue, ct);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
