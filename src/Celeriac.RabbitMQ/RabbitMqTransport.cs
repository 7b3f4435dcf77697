using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Celeriac.RabbitMQ;

/// <summary>
/// The AMQP 0-9-1 broker (<c>amqp://user:pass@host:port/vhost</c>, <c>amqps://</c>), as Celery uses RabbitMQ:
/// durable direct exchanges and queues, persistent messages with AMQP-typed headers, <c>basic.qos</c> prefetch and
/// acknowledgements on the channel that delivered. Every publish waits for the broker's confirm, so a process
/// that exits right after publishing has lost nothing.
/// </summary>
public sealed class RabbitMqTransport : ITransport, ICatchUpTransport
{
    // The exchanges Celery declares by name, with the types and durability Celery gives them, and the arguments of
    // the subscriber queues bound to them (kombu's pidbox: x-expires 10 s, x-message-ttl 300 s; celeryev's event
    // receivers: 60 s and 5 s; a control client's reply queue: 10 s, no TTL).
    private static readonly Dictionary<string, KnownExchange> s_known = new(StringComparer.Ordinal)
    {
        ["celeryev"] = new(ExchangeType.Topic, true, 60_000, 5_000),
        ["celery.pidbox"] = new(ExchangeType.Fanout, false, 10_000, 300_000),
        ["reply.celery.pidbox"] = new(ExchangeType.Direct, false, 10_000, null),
    };

    /// <summary>RabbitMQ's own default <c>consumer_timeout</c> (30 min).</summary>
    private static readonly TimeSpan s_defaultConsumerTimeout = TimeSpan.FromMinutes(30);

    // The TLS settings each factory was made with, for the error of a failed connect.
    private static readonly ConditionalWeakTable<ConnectionFactory, BrokerTls> s_tls = [];

    private readonly ConnectionFactory _factory;
    private readonly string _display;
    private readonly ILogger _logger;
    private Lazy<Task<IConnection>> _connection;
    private readonly TimeSpan _connectTimeout;
    private readonly SemaphoreSlim _publishGate = new(1, 1);
    private readonly ConcurrentDictionary<string, byte> _declared = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<IChannel, byte> _consumerChannels = new();
    private readonly ConcurrentDictionary<AmqpConsumer, byte> _consumers = new();
    private readonly Lock _fenceGate = new();
    private Task<string>? _fenceQueue;
    private readonly ConcurrentDictionary<string, byte> _quorumQueues = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task>> _declaring = new(StringComparer.Ordinal);
    private readonly TimeSpan _consumerTimeout;
    private IChannel? _publisher;
    private int _disposed;

    /// <summary>Connects (lazily; the client recovers the connection, channels and consumers by itself after a loss).</summary>
    public RabbitMqTransport(TransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _display = UrlText.Mask(options.Url);
        _logger = options.LoggerFactory.CreateLogger("Celeriac.RabbitMQ");
        _factory = CreateFactory(options.Url, _display);
        _connectTimeout = options.ConnectTimeout;
        _factory.RequestedConnectionTimeout = options.ConnectTimeout;
        _consumerTimeout = ConsumerTimeoutOf(options.Url, _display);
        _connection = new Lazy<Task<IConnection>>(() => ConnectAsync(_factory, "celeriac"));
    }

    internal static ConnectionFactory CreateFactory(Uri url, string display)
    {
        if (string.IsNullOrEmpty(url.Host))
        {
            throw new CeleriacConfigurationException($"'{display}' names no host: write amqp://user:password@host:5672/vhost.");
        }

        // kombu: 'amqp://host//' is the vhost '/', 'amqp://host/' and 'amqp://host' too.
        string path = url.AbsolutePath;
        string vhost = path is "" or "/" or "//" ? "/" : Uri.UnescapeDataString(path[1..]);
        var factory = new ConnectionFactory
        {
            HostName = url.Host,
            Port = url.IsDefaultPort || url.Port <= 0 ? (url.Scheme == "amqps" ? 5671 : 5672) : url.Port,
            VirtualHost = vhost,
            AutomaticRecoveryEnabled = true,
            TopologyRecoveryEnabled = true,
            NetworkRecoveryInterval = TimeSpan.FromSeconds(1),
            RequestedHeartbeat = TimeSpan.FromSeconds(60),
            ClientProvidedName = "celeriac",
        };
        if (url.UserInfo.Length > 0)
        {
            string[] parts = url.UserInfo.Split(':', 2);
            factory.UserName = Uri.UnescapeDataString(parts[0]);
            factory.Password = parts.Length == 2 ? Uri.UnescapeDataString(parts[1]) : "";
        }

        if (url.Scheme == "amqps")
        {
            // The server is verified (against ssl_ca_certs, or the system's store) unless ssl_cert_reqs=none says
            // otherwise; the verdict is remembered, so that a failed handshake is reported as what it is.
            BrokerTls tls = BrokerTls.FromUrl(url);
            factory.Ssl = new SslOption
            {
                Enabled = true,
                ServerName = tls.Host,
                CertificateValidationCallback = (_, certificate, chain, errors) => tls.Validate(certificate, chain, errors),
                Certs = tls.ClientCertificate is { } client ? [client] : null,
                CertificateSelectionCallback = (_, _, _, remote, issuers) => tls.SelectClientCertificate(remote, issuers)!,
            };
            s_tls.AddOrUpdate(factory, tls);
        }

        return factory;
    }

    /// <summary>Connects; a TLS failure is thrown as a <see cref="CeleriacConfigurationException"/> that says why and what to set.</summary>
    internal static async Task<IConnection> ConnectAsync(ConnectionFactory factory, string name)
    {
        s_tls.TryGetValue(factory, out BrokerTls? tls);
        try
        {
            IConnection connection = await factory.CreateConnectionAsync(name).ConfigureAwait(false);
            tls?.NoteConnected();
            return connection;
        }
        catch (Exception e) when (tls is not null && (tls.Explain(e, closedMeansRefused: true) ?? tls.MissingClientCertificate(e)) is { } clear)
        {
            // The second: a server that asked for a client certificate, got none and closed, however the close showed.
            throw clear;
        }
    }

    /// <summary>
    /// The broker's <c>consumer_timeout</c> as the URL's <c>?consumer_timeout=</c> (seconds) says, or RabbitMQ's default:
    /// deferred deliveries are parked at half of it.
    /// </summary>
    internal static TimeSpan ConsumerTimeoutOf(Uri url, string display)
    {
        foreach (string pair in url.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] kv = pair.Split('=', 2);
            if (kv[0] == "consumer_timeout")
            {
                string value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
                return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && seconds >= 1 && double.IsFinite(seconds)
                    ? TimeSpan.FromSeconds(seconds)
                    : throw new CeleriacConfigurationException($"'{display}': consumer_timeout must be a number of seconds, at least 1 (got '{value}').");
            }
        }

        return s_defaultConsumerTimeout;
    }

    private async Task<IConnection> ConnectionAsync()
    {
        Lazy<Task<IConnection>> connecting = Volatile.Read(ref _connection);
        try
        {
            return await connecting.Value.ConfigureAwait(false);
        }
        catch (global::RabbitMQ.Client.Exceptions.BrokerUnreachableException e)
        {
            // The first connection failed (once connected, the client recovers by itself): say so once, name the broker,
            // and let the next call try again rather than keep the failed attempt.
            Interlocked.CompareExchange(ref _connection, new Lazy<Task<IConnection>>(() => ConnectAsync(_factory, "celeriac")), connecting);
            Exception cause = e.InnerException ?? e;
            Log.Unreachable(_logger, _display, cause.Message.Split('\n')[0]);
            throw new global::Celeriac.BrokerUnreachableException(_display, _connectTimeout, e);
        }
    }

    /// <summary>Runs <paramref name="work"/> on a short-lived channel (a failed declare closes its channel in AMQP).</summary>
    private async Task<T> OnTemporaryChannelAsync<T>(Func<IChannel, Task<T>> work, CancellationToken ct)
    {
        IConnection connection = await ConnectionAsync().ConfigureAwait(false);
        IChannel channel = await connection.CreateChannelAsync(cancellationToken: ct).ConfigureAwait(false);
        await using (channel.ConfigureAwait(false))
        {
            return await work(channel).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DeclareQueueAsync(QueueDeclaration queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        string key = string.Join('\n', queue.Name, queue.Exchange, queue.RoutingKey, queue.ExchangeType, queue.MaxPriority, queue.Quorum);

        if (IsTransient(queue))
        {
            // A control client's reply queue may have expired since its last use: declared each time, as kombu does.
            await DeclareNowAsync(queue, key).WaitAsync(ct).ConfigureAwait(false);
            return;
        }

        if (_declared.ContainsKey(key))
        {
            return;
        }

        // One declare at a time per queue: a burst of first sends must not open a channel each (the connection has
        // a limited number). A failed declare is forgotten, so the next call tries again.
        Lazy<Task> declaring = _declaring.GetOrAdd(key, _ => new Lazy<Task>(() => DeclareNowAsync(queue, key)));
        try
        {
            await declaring.Value.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (Exception) when (declaring.Value.IsFaulted || declaring.Value.IsCanceled)
        {
            _declaring.TryRemove(new KeyValuePair<string, Lazy<Task>>(key, declaring));
            throw;
        }
    }

    private async Task DeclareNowAsync(QueueDeclaration queue, string key)
    {
        CancellationToken ct = CancellationToken.None;
        await OnTemporaryChannelAsync(
            async channel =>
            {
                Dictionary<string, object?>? arguments = null;
                if (queue.MaxPriority is { } max)
                {
                    arguments = new() { ["x-max-priority"] = max };
                }

                if (queue.Quorum)
                {
                    arguments = new() { ["x-queue-type"] = "quorum" };
                }

                if (IsTransient(queue))
                {
                    // As kombu's reply queue: not durable, deleted when unused, and gone after the expiry with no consumer.
                    arguments = new() { ["x-expires"] = s_known[queue.Exchange].QueueExpires };
                    await channel.QueueDeclareAsync(queue.Name, durable: false, exclusive: false, autoDelete: true, arguments, cancellationToken: ct).ConfigureAwait(false);
                }
                else
                {
                    await channel.QueueDeclareAsync(queue.Name, durable: true, exclusive: false, autoDelete: false, arguments, cancellationToken: ct).ConfigureAwait(false);
                }

                if (queue.Exchange.Length > 0)
                {
                    await DeclareExchangeAsync(channel, queue.Exchange, queue.ExchangeType, ct).ConfigureAwait(false);
                    await channel.QueueBindAsync(queue.Name, queue.Exchange, queue.RoutingKey ?? queue.Name, cancellationToken: ct).ConfigureAwait(false);
                }

                return true;
            },
            ct).ConfigureAwait(false);
        _declared.TryAdd(key, 0);
        _declared.TryAdd("queue\n" + queue.Name, 0);
        if (queue.Quorum)
        {
            _quorumQueues.TryAdd(queue.Name, 0);
        }
    }

    private static bool IsTransient(QueueDeclaration queue) =>
        queue.Exchange == "reply.celery.pidbox";

    private async Task EnsureQueueAsync(string queue, CancellationToken ct)
    {
        if (_declared.ContainsKey("queue\n" + queue) || queue.StartsWith("amq.", StringComparison.Ordinal))
        {
            return;
        }

        try
        {
            await OnTemporaryChannelAsync(
                async channel => await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, cancellationToken: ct).ConfigureAwait(false),
                ct).ConfigureAwait(false);
        }
        catch (global::RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode is 405 or 406)
        {
            // It exists with other arguments (a priority queue, a reply queue): it is there, which is what matters.
        }

        _declared.TryAdd("queue\n" + queue, 0);
    }

    private async Task DeclareExchangeAsync(IChannel channel, string exchange, string? type, CancellationToken ct)
    {
        KnownExchange known = s_known.TryGetValue(exchange, out KnownExchange? k) ? k : new(type ?? ExchangeType.Direct, true, null, null);
        await channel.ExchangeDeclareAsync(exchange, known.Type, known.Durable, autoDelete: false, cancellationToken: ct).ConfigureAwait(false);
        _declared.TryAdd("exchange\n" + exchange, 0);
    }

    /// <inheritdoc />
    public async ValueTask PublishAsync(string exchange, string routingKey, IReadOnlyList<TransportMessage> messages, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        ArgumentNullException.ThrowIfNull(routingKey);
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0)
        {
            return;
        }

        // Publishing to an exchange that does not exist would close the channel, and to a queue that does not exist
        // would drop the message: declare them first, as kombu's producer does (Celery's task_create_missing_queues).
        if (exchange.Length == 0)
        {
            await EnsureQueueAsync(routingKey, ct).ConfigureAwait(false);
        }
        else if (!_declared.ContainsKey("exchange\n" + exchange))
        {
            await OnTemporaryChannelAsync(
                async channel =>
                {
                    await DeclareExchangeAsync(channel, exchange, null, ct).ConfigureAwait(false);
                    return true;
                },
                ct).ConfigureAwait(false);
        }

        var properties = new BasicProperties[messages.Count];
        for (int i = 0; i < messages.Count; i++)
        {
            properties[i] = PropertiesOf(messages[i]);
        }

        // Until every message is confirmed: what the broker did not confirm (it went away, or the channel closed)
        // is sent again once the connection is back, with back-off, for up to a minute; then the error is thrown.
        List<int> pending = [.. Enumerable.Range(0, messages.Count)];
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        TimeSpan delay = TimeSpan.FromMilliseconds(100);
        bool down = false;
        while (true)
        {
            var confirms = new List<(int Index, Task Confirm)>(pending.Count);
            try
            {
                IChannel publisher = await PublisherAsync(ct).ConfigureAwait(false);
                foreach (int i in pending)
                {
                    // With confirmation tracking, each publish completes when the broker has confirmed it.
                    confirms.Add((i, publisher.BasicPublishAsync(exchange, routingKey, mandatory: false, properties[i], messages[i].Body, ct).AsTask()));
                }
            }
            catch (Exception e) when (IsOutage(e) && !ct.IsCancellationRequested)
            {
                // Not all were handed to the channel; the ones that were are awaited below.
            }

            try
            {
                await Task.WhenAll(confirms.Select(c => c.Confirm)).ConfigureAwait(false);
            }
            catch (Exception e) when (IsOutage(e) && !ct.IsCancellationRequested)
            {
                // The unconfirmed ones are counted below and sent again.
            }

            var sent = new HashSet<int>(confirms.Where(c => c.Confirm.IsCompletedSuccessfully).Select(c => c.Index));
            pending.RemoveAll(sent.Contains);
            Celeriac.Diagnostics.CeleriacDiagnostics.RecordPublishConfirms("rabbitmq", sent.Count);
            if (pending.Count == 0)
            {
                if (down)
                {
                    Log.PublishingAgain(_logger, _display);
                }

                return;
            }

            if (!down)
            {
                down = true;
                Log.PublishWaiting(_logger, _display, pending.Count);
            }

            if (System.Diagnostics.Stopwatch.GetElapsedTime(started) > TimeSpan.FromSeconds(60))
            {
                throw new InvalidOperationException($"RabbitMQ at {_display} did not confirm {pending.Count} of {messages.Count} message(s) within 60 s; they may not have been sent.");
            }

            await Task.Delay(delay, ct).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            Celeriac.Diagnostics.CeleriacDiagnostics.RecordPublishRetries("rabbitmq", pending.Count);
        }
    }

    private static bool IsOutage(Exception e) => e is global::RabbitMQ.Client.Exceptions.AlreadyClosedException
        or global::RabbitMQ.Client.Exceptions.BrokerUnreachableException
        or global::RabbitMQ.Client.Exceptions.OperationInterruptedException
        or global::RabbitMQ.Client.Exceptions.PublishException
        or System.IO.IOException
        or System.Net.Sockets.SocketException
        or ObjectDisposedException
        or TimeoutException;

    private static BasicProperties PropertiesOf(TransportMessage m)
    {
        var properties = new BasicProperties
        {
            ContentType = m.ContentType,
            ContentEncoding = m.ContentEncoding,
            Headers = AmqpHeaders.ToAmqp(m.Headers),
            DeliveryMode = m.DeliveryMode == 1 ? DeliveryModes.Transient : DeliveryModes.Persistent,
            Priority = (byte)Math.Clamp(m.Priority ?? 0, 0, 255),
        };
        if (m.CorrelationId is not null)
        {
            properties.CorrelationId = m.CorrelationId;
        }

        if (m.ReplyTo is not null)
        {
            properties.ReplyTo = m.ReplyTo;
        }

        if (m.Expiration is not null)
        {
            properties.Expiration = m.Expiration;
        }

        return properties;
    }

    private async Task<IChannel> PublisherAsync(CancellationToken ct)
    {
        if (_publisher is { IsOpen: true } open)
        {
            return open;
        }

        await _publishGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_publisher is { IsOpen: true } again)
            {
                return again;
            }

            if (_publisher is not null)
            {
                await _publisher.DisposeAsync().ConfigureAwait(false);
            }

            IConnection connection = await ConnectionAsync().ConfigureAwait(false);
            _publisher = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), ct).ConfigureAwait(false);
            return _publisher;
        }
        finally
        {
            _publishGate.Release();
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<Delivery> ConsumeAsync(ConsumeOptions options, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        IConnection connection = await ConnectionAsync().ConfigureAwait(false);
        string[] queues = [.. options.Queues.Distinct(StringComparer.Ordinal)];
        foreach (string queue in queues)
        {
            await EnsureQueueAsync(queue, ct).ConfigureAwait(false);
        }

        bool quorum = queues.Any(_quorumQueues.ContainsKey);
        AmqpConsumer consumer = await AmqpConsumer.StartAsync(this, connection, queues, options, quorum, _consumerTimeout / 2, _logger, ct).ConfigureAwait(false);

        // The channel outlives this loop: deliveries are acked on the channel that delivered them.
        _consumerChannels.TryAdd(consumer.ConsumerChannel, 0);
        _consumers.TryAdd(consumer, 0);
        long handed = 0;
        try
        {
            while (true)
            {
                Delivery delivery;
                try
                {
                    delivery = await consumer.Ready.ReadAsync(ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    break;
                }

                yield return delivery;
                consumer.HandedOver(++handed);
            }
        }
        finally
        {
            _consumers.TryRemove(consumer, out _);
            await consumer.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits until each running consume has handed over every delivery the broker had sent it (RabbitMQ pushes each
    /// queue's messages on the consumer's channel; a control message comes on another and may overtake them in this
    /// process). With prefetch off, until a <c>basic.get</c> pass begun after the call has handed over what it found.
    /// </summary>
    public async ValueTask CatchUpAsync(CancellationToken ct = default)
    {
        try
        {
            await Task.WhenAll(_consumers.Keys.Select(c => c.CatchUpAsync(ct))).ConfigureAwait(false);
        }
        catch (Exception e) when (e is global::RabbitMQ.Client.Exceptions.AlreadyClosedException or global::RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            // The channel went away (the client recovers it): its deliveries are back with the broker.
        }
    }

    /// <summary>
    /// The name of an empty queue of this connection that a catch-up's fence consumer starts on (declared once, on a
    /// channel of its own, exclusive: it goes with the connection, and the client declares it again on recovery).
    /// </summary>
    internal Task<string> FenceQueueAsync(CancellationToken ct)
    {
        lock (_fenceGate)
        {
            if (_fenceQueue is null || _fenceQueue.IsFaulted || _fenceQueue.IsCanceled)
            {
                string name = "celeriac.fence." + Guid.NewGuid().ToString("N");
                _fenceQueue = OnTemporaryChannelAsync(async channel =>
                {
                    await channel.QueueDeclareAsync(name, durable: false, exclusive: true, autoDelete: false, cancellationToken: CancellationToken.None).ConfigureAwait(false);
                    return name;
                }, CancellationToken.None);
            }

            return _fenceQueue.WaitAsync(ct);
        }
    }

    /// <summary>Drops the fence queue <paramref name="name"/> when it was found gone: the next catch-up declares another.</summary>
    internal void ForgetFenceQueue(string name)
    {
        lock (_fenceGate)
        {
            if (_fenceQueue is { IsCompletedSuccessfully: true } known && known.Result == name)
            {
                _fenceQueue = null;
            }
        }
    }

    /// <summary>A delivered message as a <see cref="TransportMessage"/>.</summary>
    internal static TransportMessage MessageOf(BasicDeliverEventArgs e) => MessageOf(e.BasicProperties, e.Body, e.Exchange, e.RoutingKey, e.DeliveryTag);

    /// <summary>A message taken with <c>basic.get</c> as a <see cref="TransportMessage"/>.</summary>
    internal static TransportMessage MessageOf(BasicGetResult got) => MessageOf(got.BasicProperties, got.Body, got.Exchange, got.RoutingKey, got.DeliveryTag);

    private static TransportMessage MessageOf(IReadOnlyBasicProperties p, ReadOnlyMemory<byte> body, string exchange, string routingKey, ulong deliveryTag)
    {
        return new TransportMessage
        {
            Body = body.ToArray(), // the client reuses its buffer after the handler returns
            ContentType = p.ContentType ?? Protocol.CeleryJson.ContentType,
            ContentEncoding = p.ContentEncoding ?? Protocol.CeleryJson.ContentEncoding,
            Headers = AmqpHeaders.FromAmqp(p.Headers),
            CorrelationId = p.CorrelationId,
            ReplyTo = p.ReplyTo,
            DeliveryMode = p.DeliveryMode == DeliveryModes.Transient ? 1 : 2,
            Priority = p.IsPriorityPresent() ? p.Priority : null,
            Expiration = p.Expiration,
            Exchange = exchange,
            RoutingKey = routingKey,
            DeliveryTag = deliveryTag.ToString(CultureInfo.InvariantCulture),
        };
    }

    /// <inheritdoc />
    public async ValueTask<IAsyncDisposable> SubscribeAsync(string exchange, Func<TransportMessage, ValueTask> handler, SubscriberBinding? queue = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        ArgumentNullException.ThrowIfNull(handler);
        IConnection connection = await ConnectionAsync().ConfigureAwait(false);
        IChannel channel = await connection.CreateChannelAsync(cancellationToken: ct).ConfigureAwait(false);
        KnownExchange known = s_known.TryGetValue(exchange, out KnownExchange? k) ? k : new(ExchangeType.Fanout, true, null, null);
        await DeclareExchangeAsync(channel, exchange, known.Type, ct).ConfigureAwait(false);
        if (exchange == "celery.pidbox")
        {
            // kombu's pidbox node declares the exchange its replies go to as it starts, so a worker's topology has it.
            await DeclareExchangeAsync(channel, "reply.celery.pidbox", null, ct).ConfigureAwait(false);
        }

        // A named queue is declared as Celery declares its own (a worker's '<node>.celery.pidbox': not durable, deleted
        // when unused, with expiry and a message TTL); an unnamed one is the server's, exclusive to this subscription.
        string name;
        if (queue is not null)
        {
            Dictionary<string, object?> arguments = [];
            if (known.QueueExpires is { } expires)
            {
                arguments["x-expires"] = expires;
            }

            if (known.MessageTtl is { } ttl)
            {
                arguments["x-message-ttl"] = ttl;
            }

            name = (await channel.QueueDeclareAsync(queue.Name, durable: false, exclusive: false, autoDelete: true, arguments, cancellationToken: ct).ConfigureAwait(false)).QueueName;
        }
        else
        {
            name = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct).ConfigureAwait(false)).QueueName;
        }

        await channel.QueueBindAsync(name, exchange, known.Type == ExchangeType.Topic ? queue?.BindingKey ?? "#" : "", cancellationToken: ct).ConfigureAwait(false);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, e) =>
        {
            try
            {
                await handler(MessageOf(e)).ConfigureAwait(false);
            }
            catch (Exception error)
            {
                Log.SubscriberFailed(_logger, exchange, error);
            }
        };
        await channel.BasicConsumeAsync(name, autoAck: true, consumer, ct).ConfigureAwait(false);
        return channel;
    }

    /// <inheritdoc />
    public async ValueTask<long> GetQueueLengthAsync(string queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        try
        {
            return await OnTemporaryChannelAsync(async channel => (long)await channel.MessageCountAsync(queue, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        }
        catch (global::RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
        {
            return 0; // No such queue: nothing in it.
        }
    }

    /// <inheritdoc />
    public async ValueTask<long> PurgeAsync(string queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        try
        {
            return await OnTemporaryChannelAsync(async channel => (long)await channel.QueuePurgeAsync(queue, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        }
        catch (global::RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
        {
            return 0;
        }
    }

    /// <summary>Drops the connection as a killed process would (the broker returns every unacked message). For tests.</summary>
    internal async ValueTask KillAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0 || !_connection.IsValueCreated)
        {
            return;
        }

        IConnection connection = await ConnectionAsync().ConfigureAwait(false);
        await connection.AbortAsync().ConfigureAwait(false);
        await connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Closes the channels (the broker returns unsettled deliveries to their queues) and the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_connection.IsValueCreated && _connection.Value.IsCompletedSuccessfully)
        {
            IConnection connection = _connection.Value.Result;
            foreach (IChannel channel in _consumerChannels.Keys)
            {
                await channel.DisposeAsync().ConfigureAwait(false);
            }

            if (_publisher is not null)
            {
                await _publisher.DisposeAsync().ConfigureAwait(false);
            }

            await connection.CloseAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }

        _publishGate.Dispose();
    }

    /// <summary>An exchange Celery declares, and the arguments of subscriber queues bound to it.</summary>
    private sealed record KnownExchange(string Type, bool Durable, int? QueueExpires, int? MessageTtl);
}
