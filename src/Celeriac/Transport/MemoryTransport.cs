using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Celeriac.Transport;

/// <summary>
/// An in-process broker (<c>memory://</c>, or <c>memory://name</c> for a separate one), like kombu's
/// memory transport: every transport with the same name in one process shares its queues.
/// Messages are not persisted; a consumer's unsettled deliveries return to their queues when it is disposed.
/// </summary>
public sealed class MemoryTransport : ITransport, ICatchUpTransport
{
    private static readonly ConcurrentDictionary<string, MemoryBroker> s_brokers = new(StringComparer.Ordinal);
    private readonly MemoryBroker _broker;
    private readonly ConcurrentDictionary<MemoryDelivery, byte> _held = new();
    private readonly ConcurrentDictionary<ConsumeCatchUp, byte> _consumers = new();

    /// <summary>Connects to the in-process broker named by the URL's host (empty for the default).</summary>
    public MemoryTransport(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        _broker = s_brokers.GetOrAdd(url.Host, static _ => new MemoryBroker());
    }

    /// <inheritdoc />
    public ValueTask DeclareQueueAsync(QueueDeclaration queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        _broker.Declare(queue);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask PublishAsync(string exchange, string routingKey, IReadOnlyList<TransportMessage> messages, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ct.ThrowIfCancellationRequested();
        foreach (TransportMessage m in messages)
        {
            _broker.Publish(exchange, routingKey, Stamped(m, exchange, routingKey));
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>The message as a broker delivers it: with the exchange and routing key it was published to.</summary>
    private static TransportMessage Stamped(TransportMessage m, string exchange, string routingKey) =>
        m.Exchange == exchange && m.RoutingKey == routingKey ? m : m with { Exchange = exchange, RoutingKey = routingKey };

    /// <inheritdoc />
    public async IAsyncEnumerable<Delivery> ConsumeAsync(ConsumeOptions options, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        MemoryQueue[] queues = options.Queues.Select(_broker.GetQueue).ToArray();
        var window = new PrefetchWindow(options);
        var catchUp = new ConsumeCatchUp(window);
        _consumers.TryAdd(catchUp, 0);
        try
        {
            int next = 0;
            while (!ct.IsCancellationRequested)
            {
                catchUp.HandedOver();
                await window.WaitForRoomAsync(ct).ConfigureAwait(false);
                Task signal = _broker.Signal.WaitAsync();
                long take = catchUp.BeginTake(out Task asked);
                MemoryDelivery? delivery = null;
                for (int i = 0; i < queues.Length && delivery is null; i++)
                {
                    MemoryQueue q = queues[(next + i) % queues.Length];
                    if (q.TryDequeue(out MemoryItem item, out bool redelivered))
                    {
                        delivery = new MemoryDelivery(this, q, item, redelivered, window);
                    }
                }

                next++;
                if (delivery is null)
                {
                    catchUp.Met(take);
                    if (!catchUp.Pending)
                    {
                        await Task.WhenAny(signal, asked).WaitAsync(ct).ConfigureAwait(false);
                    }

                    continue;
                }

                window.Take(1);
                _held.TryAdd(delivery, 0);
                yield return delivery;
            }
        }
        finally
        {
            catchUp.Ended();
            _consumers.TryRemove(catchUp, out _);
        }
    }

    /// <inheritdoc />
    /// <remarks>A broadcast is handed to its subscribers as it is published, before a consumer has run: this lets them run.</remarks>
    public async ValueTask CatchUpAsync(CancellationToken ct = default) =>
        await Task.WhenAll(_consumers.Keys.Select(c => c.WaitAsync(ct))).ConfigureAwait(false);

    /// <inheritdoc />
    public ValueTask<IAsyncDisposable> SubscribeAsync(string exchange, Func<TransportMessage, ValueTask> handler, SubscriberBinding? queue = null, CancellationToken ct = default) =>
        ValueTask.FromResult(_broker.Subscribe(exchange, handler));

    /// <inheritdoc />
    public ValueTask<long> GetQueueLengthAsync(string queue, CancellationToken ct = default) => ValueTask.FromResult((long)_broker.GetQueue(queue).Count);

    /// <inheritdoc />
    public ValueTask<long> PurgeAsync(string queue, CancellationToken ct = default) => ValueTask.FromResult((long)_broker.GetQueue(queue).Purge());

    /// <summary>
    /// Puts raw bytes on a queue as a key-value broker would hold them (kombu's JSON envelope), for tests of
    /// bad input: bytes that are not a readable envelope are delivered with no message and a decode error.
    /// </summary>
    internal void InjectRaw(string queue, ReadOnlySpan<byte> raw)
    {
        ArgumentNullException.ThrowIfNull(queue);
        MemoryItem item = Protocol.KombuEnvelope.TryDecode(raw, out TransportMessage? message, out string? error)
            ? new MemoryItem(message, null)
            : new MemoryItem(null, error ?? "unreadable message");
        _broker.GetQueue(queue).Enqueue(item);
        _broker.Signal.Pulse();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (MemoryDelivery d in _held.Keys)
        {
            await d.RejectAsync(requeue: true).ConfigureAwait(false);
        }
    }

    private sealed class MemoryDelivery(MemoryTransport owner, MemoryQueue queue, MemoryItem item, bool redelivered, PrefetchWindow window)
        : Delivery(queue.Name, item.Message, item.DecodeError, redelivered, window)
    {
        protected override ValueTask SettleAsync(bool? requeue, CancellationToken ct)
        {
            owner._held.TryRemove(this, out _);
            if (requeue == true)
            {
                queue.Requeue(item);
                owner._broker.Signal.Pulse();
            }

            return ValueTask.CompletedTask;
        }
    }
}

internal sealed class MemoryBroker
{
    private readonly ConcurrentDictionary<string, MemoryQueue> _queues = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Exchange, string Key), List<string>> _bindings = new();
    // Celery's event and remote-control exchanges are fanout by definition (as on Redis): with no subscriber yet, what
    // is published to them goes nowhere instead of into a queue named by its routing key.
    private readonly ConcurrentDictionary<string, List<Func<TransportMessage, ValueTask>>> _fanout = new(StringComparer.Ordinal)
    {
        ["celeryev"] = [],
        ["celery.pidbox"] = [],
    };

    public AsyncPulse Signal { get; } = new();

    public MemoryQueue GetQueue(string name) => _queues.GetOrAdd(name, static n => new MemoryQueue(n));

    public void Declare(QueueDeclaration q)
    {
        GetQueue(q.Name);
        if (q.Exchange.Length > 0)
        {
            List<string> bound = _bindings.GetOrAdd((q.Exchange, q.RoutingKey ?? q.Name), static _ => []);
            lock (bound)
            {
                if (!bound.Contains(q.Name))
                {
                    bound.Add(q.Name);
                }
            }
        }
    }

    public void Publish(string exchange, string routingKey, TransportMessage m)
    {
        if (_fanout.TryGetValue(exchange, out List<Func<TransportMessage, ValueTask>>? subscribers))
        {
            Func<TransportMessage, ValueTask>[] copy;
            lock (subscribers)
            {
                copy = [.. subscribers];
            }

            foreach (Func<TransportMessage, ValueTask> s in copy)
            {
                _ = s(m).AsTask();
            }

            return;
        }

        if (exchange.Length == 0)
        {
            GetQueue(routingKey).Enqueue(new MemoryItem(m, null));
        }
        else if (_bindings.TryGetValue((exchange, routingKey), out List<string>? bound))
        {
            string[] names;
            lock (bound)
            {
                names = [.. bound];
            }

            foreach (string name in names)
            {
                GetQueue(name).Enqueue(new MemoryItem(m, null));
            }
        }
        else
        {
            // Celery's default exchange for a queue routes by the queue's name.
            GetQueue(routingKey).Enqueue(new MemoryItem(m, null));
        }

        Signal.Pulse();
    }

    public IAsyncDisposable Subscribe(string exchange, Func<TransportMessage, ValueTask> handler)
    {
        List<Func<TransportMessage, ValueTask>> list = _fanout.GetOrAdd(exchange, static _ => []);
        lock (list)
        {
            list.Add(handler);
        }

        return new Unsubscriber(() =>
        {
            lock (list)
            {
                list.Remove(handler);
            }
        });
    }

    private sealed class Unsubscriber(Action action) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            action();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A queued message, or the reason the bytes put on the queue could not be read as one.</summary>
internal readonly record struct MemoryItem(TransportMessage? Message, string? DecodeError);

internal sealed class MemoryQueue(string name)
{
    private readonly Lock _gate = new();
    private readonly LinkedList<(MemoryItem Item, bool Redelivered)> _items = new();

    public string Name { get; } = name;

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _items.Count;
            }
        }
    }

    public void Enqueue(MemoryItem item)
    {
        lock (_gate)
        {
            _items.AddLast((item, false));
        }
    }

    public void Requeue(MemoryItem item)
    {
        lock (_gate)
        {
            _items.AddFirst((item, true));
        }
    }

    public bool TryDequeue(out MemoryItem item, out bool redelivered)
    {
        lock (_gate)
        {
            if (_items.First is { } first)
            {
                _items.RemoveFirst();
                (item, redelivered) = first.Value;
                return true;
            }
        }

        item = default;
        redelivered = false;
        return false;
    }

    public int Purge()
    {
        lock (_gate)
        {
            int n = _items.Count;
            _items.Clear();
            return n;
        }
    }
}
