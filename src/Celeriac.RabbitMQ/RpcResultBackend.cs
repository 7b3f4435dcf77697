using System.Collections.Concurrent;
using Celeriac.Results;
using Celeriac.Transport;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Celeriac.RabbitMQ;

/// <summary>
/// Celery's RPC result backend (<c>rpc://</c>): a worker sends each state as a message to the default exchange with
/// the task's <c>reply_to</c> (the client's oid) as routing key and the task id as correlation id; the client reads
/// its own reply queue (<c>&lt;oid&gt;</c>: not durable, auto-delete, <c>x-expires</c> one day, as Celery declares it).
/// Results live only in the client that sent the task, as in Celery: no groups, no chords, nothing to read later
/// from another process.
/// </summary>
public sealed class RpcResultBackend : IResultBackend, IReplyQueueResultBackend
{
    private readonly ConnectionFactory _factory;
    private readonly string? _replyTo;
    private readonly Lazy<Task<IConnection>> _connection;
    private readonly ConcurrentDictionary<string, TaskResultMeta> _states = new(StringComparer.Ordinal);
    private readonly AsyncPulse _changed = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IChannel? _publisher;
    private IChannel? _listener;
    private int _disposed;

    /// <summary>Creates the backend on the broker of <see cref="ResultBackendOptions.BrokerUrl"/> (which must be amqp:// or amqps://).</summary>
    public RpcResultBackend(ResultBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Uri broker = options.BrokerUrl is { Scheme: "amqp" or "amqps" } url
            ? url
            : throw new CeleriacConfigurationException($"The rpc:// result backend sends results through an AMQP broker; the broker is '{(options.BrokerUrl is null ? "none" : UrlText.Mask(options.BrokerUrl))}'. Use amqp:// as the broker, or another result backend.");
        _factory = RabbitMqTransport.CreateFactory(broker, UrlText.Mask(broker));
        _replyTo = options.ReplyTo;
        _connection = new Lazy<Task<IConnection>>(() => RabbitMqTransport.ConnectAsync(_factory, "celeriac-rpc"));
    }

    /// <inheritdoc />
    public async ValueTask StoreAsync(TaskResultMeta meta, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(meta);
        if (meta.ReplyTo is not { Length: > 0 } replyTo)
        {
            return; // The caller asked for no reply queue: there is nowhere to send the state (Celery drops it too).
        }

        IChannel publisher = await PublisherAsync(ct).ConfigureAwait(false);
        var properties = new BasicProperties
        {
            ContentType = Protocol.CeleryJson.ContentType,
            ContentEncoding = Protocol.CeleryJson.ContentEncoding,
            CorrelationId = meta.TaskId,
            DeliveryMode = DeliveryModes.Transient,
            Priority = 0,
            Headers = new Dictionary<string, object?>(),
        };
        await publisher.BasicPublishAsync("", replyTo, mandatory: false, properties, meta.Encode(), ct).ConfigureAwait(false);
    }

    private async Task<IChannel> PublisherAsync(CancellationToken ct)
    {
        if (_publisher is { IsOpen: true } open)
        {
            return open;
        }

        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_publisher is not { IsOpen: true })
            {
                IConnection connection = await _connection.Value.ConfigureAwait(false);
                _publisher = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), ct).ConfigureAwait(false);
            }

            return _publisher;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask EnsureReplyQueueAsync(CancellationToken ct = default)
    {
        if (_listener is { IsOpen: true } || _replyTo is null)
        {
            return;
        }

        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_listener is { IsOpen: true })
            {
                return;
            }

            IConnection connection = await _connection.Value.ConfigureAwait(false);
            IChannel channel = await connection.CreateChannelAsync(cancellationToken: ct).ConfigureAwait(false);
            var arguments = new Dictionary<string, object?> { ["x-expires"] = 86_400_000 };
            await channel.QueueDeclareAsync(_replyTo, durable: false, exclusive: false, autoDelete: true, arguments, cancellationToken: ct).ConfigureAwait(false);
            var consumer = new AsyncEventingBasicConsumer(channel);
            consumer.ReceivedAsync += (_, e) =>
            {
                OnReply(e);
                return Task.CompletedTask;
            };
            await channel.BasicConsumeAsync(_replyTo, autoAck: true, consumer, ct).ConfigureAwait(false);
            _listener = channel;
        }
        finally
        {
            _gate.Release();
        }
    }

    private void OnReply(BasicDeliverEventArgs e)
    {
        TaskResultMeta meta;
        try
        {
            meta = TaskResultMeta.Parse(e.Body.ToArray());
        }
        catch (System.Text.Json.JsonException)
        {
            return; // Not a result document: nothing waits for it.
        }

        string id = meta.TaskId.Length > 0 ? meta.TaskId : e.BasicProperties.CorrelationId ?? "";

        // A late non-ready state (STARTED after SUCCESS, across channels) must not hide the outcome.
        _states.AddOrUpdate(id, meta, (_, old) => TaskStates.IsReady(old.Status) && !TaskStates.IsReady(meta.Status) ? old : meta);
        _changed.Pulse();
    }

    /// <inheritdoc />
    public async ValueTask<TaskResultMeta?> GetAsync(string taskId, CancellationToken ct = default)
    {
        await EnsureReplyQueueAsync(ct).ConfigureAwait(false);
        return _states.GetValueOrDefault(taskId);
    }

    /// <inheritdoc />
    public async ValueTask<TaskResultMeta> WaitAsync(string taskId, CancellationToken ct = default)
    {
        await EnsureReplyQueueAsync(ct).ConfigureAwait(false);
        while (true)
        {
            Task changed = _changed.WaitAsync();
            if (_states.TryGetValue(taskId, out TaskResultMeta? meta) && TaskStates.IsReady(meta.Status))
            {
                return meta;
            }

            await changed.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public ValueTask ForgetAsync(string taskId, CancellationToken ct = default)
    {
        _states.TryRemove(taskId, out _);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask SaveGroupAsync(string groupId, IReadOnlyList<string> taskIds, CancellationToken ct = default) => throw NoGroups();

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<string>?> RestoreGroupAsync(string groupId, CancellationToken ct = default) => throw NoGroups();

    /// <inheritdoc />
    public ValueTask<long> IncrementChordCounterAsync(string groupId, CancellationToken ct = default) => throw NoGroups();

    private static NotSupportedException NoGroups() =>
        new("The rpc:// result backend keeps no groups or chords (nor does Celery's): use a Redis, SQLite or database result backend for them.");

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_connection.IsValueCreated && _connection.Value.IsCompletedSuccessfully)
        {
            IConnection connection = _connection.Value.Result;
            await connection.CloseAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }

        _gate.Dispose();
    }
}
