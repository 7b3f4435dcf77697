namespace Celeriac.Transport;

/// <summary>
/// A message broker, shaped after AMQP: exchanges route messages by routing key to queues; consumers
/// take from queues with a prefetch window. The empty exchange name is the default exchange, which
/// routes a message to the queue named by its routing key (as on Redis and in AMQP).
/// </summary>
public interface ITransport : IAsyncDisposable
{
    /// <summary>Declares a queue, and its exchange and binding when they are not the default exchange.</summary>
    ValueTask DeclareQueueAsync(QueueDeclaration queue, CancellationToken ct = default);

    /// <summary>
    /// Publishes messages. When the returned task completes, the broker holds them (confirms where the
    /// broker has them); a batch is sent in as few round trips as the broker allows.
    /// </summary>
    ValueTask PublishAsync(string exchange, string routingKey, IReadOnlyList<TransportMessage> messages, CancellationToken ct = default);

    /// <summary>
    /// Consumes the given queues, fairly, holding at most <see cref="ConsumeOptions.Prefetch"/> unsettled
    /// deliveries at once (deliveries that were <see cref="Delivery.Defer">deferred</see> do not count; with
    /// <see cref="ConsumeOptions.CountUntilDone"/>, claimed ones count until they are done).
    /// Ends when <paramref name="ct"/> is cancelled; unsettled deliveries then stay held
    /// until they are settled or the transport is disposed (which returns them to their queues).
    /// </summary>
    IAsyncEnumerable<Delivery> ConsumeAsync(ConsumeOptions options, CancellationToken ct = default);

    /// <summary>
    /// Subscribes to a fanout exchange (events, remote control): every subscriber gets every message
    /// published to it after it subscribed. Dispose the result to unsubscribe. <paramref name="queue"/> names the
    /// subscriber's queue and its binding key where the broker keeps one (AMQP: Celery's <c>&lt;node&gt;.celery.pidbox</c>);
    /// subscribers sharing a name share the messages. Other brokers ignore it and deliver every message.
    /// </summary>
    ValueTask<IAsyncDisposable> SubscribeAsync(string exchange, Func<TransportMessage, ValueTask> handler, SubscriberBinding? queue = null, CancellationToken ct = default);

    /// <summary>Counts the ready (not held) messages of a queue.</summary>
    ValueTask<long> GetQueueLengthAsync(string queue, CancellationToken ct = default);

    /// <summary>Deletes the ready messages of a queue and returns how many there were.</summary>
    ValueTask<long> PurgeAsync(string queue, CancellationToken ct = default);
}

/// <summary>A queue to declare and how it is bound.</summary>
/// <param name="Name">The queue name.</param>
/// <param name="Exchange">The exchange it is bound to; empty for the default exchange.</param>
/// <param name="RoutingKey">The binding key; <see langword="null"/> means the queue name.</param>
/// <param name="ExchangeType">direct, topic or fanout.</param>
/// <param name="MaxPriority">The highest priority the queue honours, or <see langword="null"/>.</param>
/// <param name="Quorum">A replicated quorum queue (RabbitMQ); other brokers ignore it.</param>
public sealed record QueueDeclaration(string Name, string Exchange = "", string? RoutingKey = null, string ExchangeType = "direct", int? MaxPriority = null, bool Quorum = false);

/// <summary>What to consume and how much to hold at once.</summary>
public sealed record ConsumeOptions
{
    /// <summary>The queues to take from; a consumer serves them fairly.</summary>
    public required IReadOnlyList<string> Queues { get; init; }

    /// <summary>The most unsettled deliveries held at once; at least 1.</summary>
    public int Prefetch { get; init; } = 4;

    /// <summary>
    /// Prefetch off: a delivery the consumer has <see cref="Delivery.TryClaim">claimed</see> counts against
    /// <see cref="Prefetch"/> until <see cref="Delivery.Done"/>, even when it was acked as it started, so the consumer
    /// takes a message only when it can start it. <value>false</value>
    /// </summary>
    public bool CountUntilDone { get; init; }

    /// <summary>
    /// The consumer calls <see cref="Delivery.Started"/> as it starts each delivery's work. A full window is then
    /// refilled once no delivery in it waits to be started, with all the room there is, instead of each time a quarter of
    /// it is free: fewer, larger takes (a broker round trip or a write transaction each). The worker consumes so.
    /// <value>false</value>
    /// </summary>
    public bool ReportsStarts { get; init; }
}

/// <summary>The queue a broker that keeps one gives a subscriber (AMQP), and what it is bound to.</summary>
/// <param name="Name">The queue name.</param>
/// <param name="BindingKey">The binding key on a topic exchange (fanout exchanges ignore it).</param>
public sealed record SubscriberBinding(string Name, string BindingKey = "#");
