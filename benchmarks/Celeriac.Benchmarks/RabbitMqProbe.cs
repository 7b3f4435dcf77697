using System.Diagnostics;
using System.Globalization;
using Celeriac.TestServers;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Celeriac.Benchmarks;

/// <summary>
/// The benchmark's own view of the RabbitMQ node, over one AMQP connection of its own, outside the workers it times:
/// the queue <c>celery</c> as Celery declares it (durable, bound to the durable direct exchange <c>celery</c>), and the
/// rpc:// reply queue of the Celery client that filled it (the client's oid: not durable, auto-delete,
/// <c>x-expires</c> one day), where the workers publish each result. Counts are passive declares (the ready
/// messages); unacked messages are visible only to <c>rabbitmqctl list_queues</c>, which takes about a second a
/// call, so it is asked once at the end of each drain rather than polled.
/// </summary>
internal sealed class RabbitMqProbe : IBrokerProbe
{
    private const int RestoreBatch = 1000;
    private static readonly TimeSpan s_takeTimeout = TimeSpan.FromSeconds(60);

    private readonly RabbitMqServer _server;
    private readonly IConnection _connection;
    private readonly Dictionary<string, Kept> _kept = new(StringComparer.Ordinal);
    private IChannel _channel;
    private string? _replyQueue;

    private RabbitMqProbe(RabbitMqServer server, IConnection connection, IChannel channel)
    {
        _server = server;
        _connection = connection;
        _channel = channel;
    }

    /// <summary>What ends a drain: the table's words.</summary>
    public static DrainEnds Ends { get; } = new("last result in the reply queue", "queue's ready count 0, then unacked 0 by rabbitmqctl");

    public string Transport => "rabbitmq";

    public string BrokerUrl => _server.Url();

    public string BackendUrl => "rpc://";

    public string ResultsNote => "results by rpc:// to the client's reply queue";

    /// <summary>Connects and declares <c>celery</c> as Celery does, so that it exists before any client or worker.</summary>
    public static async Task<RabbitMqProbe> ConnectAsync(RabbitMqServer server)
    {
        var factory = new ConnectionFactory { Uri = new Uri(server.Url()), AutomaticRecoveryEnabled = false, ClientProvidedName = "celeriac-bench-probe" };
        IConnection connection = await factory.CreateConnectionAsync();
        try
        {
            IChannel channel = await connection.CreateChannelAsync();
            await channel.ExchangeDeclareAsync(BenchTasks.Queue, ExchangeType.Direct, durable: true, autoDelete: false);
            await channel.QueueDeclareAsync(BenchTasks.Queue, durable: true, exclusive: false, autoDelete: false);
            await channel.QueueBindAsync(BenchTasks.Queue, BenchTasks.Queue, BenchTasks.Queue);
            return new RabbitMqProbe(server, connection, channel);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public override string ToString() => $"rabbitmq-server node {_server.NodeName}, broker {BrokerUrl}, results {BackendUrl}";

    /// <summary>Purges <c>celery</c> and the reply queue of the messages restored last.</summary>
    public async Task ResetAsync()
    {
        await _channel.QueuePurgeAsync(BenchTasks.Queue);
        if (_replyQueue is { } reply)
        {
            await DeclareReplyQueueAsync(reply);
            await _channel.QueuePurgeAsync(reply);
        }
    }

    public async Task<long> QueuedAsync() => await CountAsync(BenchTasks.Queue);

    /// <summary>Two passive declares: <c>celery</c>'s ready messages and the reply queue's results.</summary>
    public async Task<DrainState> StateAsync()
    {
        long queued = await CountAsync(BenchTasks.Queue);
        long results = _replyQueue is { } reply ? await CountAsync(reply) : 0;
        return new DrainState(queued, null, results);
    }

    /// <summary>
    /// Consumes the <paramref name="count"/> messages a Celery client sent to <c>celery</c> (body, properties, and the
    /// exchange and routing key they came through), all with one reply_to: the client's reply queue.
    /// </summary>
    public async Task<string> KeepAsync(string name, int count)
    {
        long queued = await WaitForCountAsync(BenchTasks.Queue, count, TimeSpan.FromSeconds(30));
        List<Message> messages = await TakeAsync(BenchTasks.Queue, count);
        string[] replyTo = [.. messages.Select(m => m.Properties.ReplyTo ?? "").Distinct(StringComparer.Ordinal)];
        if (replyTo is not [{ Length: > 0 } reply])
        {
            throw new InvalidOperationException($"the Celery client's messages name {replyTo.Length} reply queues ({string.Join(", ", replyTo)}), not one");
        }

        _kept[name] = new Kept(messages, reply);
        return string.Create(CultureInfo.InvariantCulture, $"{queued} messages taken from '{BenchTasks.Queue}' and kept, reply_to {reply}");
    }

    /// <summary>
    /// Declares the kept messages' reply queue as Celery's client does (it may have gone: auto-delete) and empties it,
    /// then publishes the messages to <c>celery</c> again, as they came, each confirmed by the broker.
    /// </summary>
    public async Task RestoreAsync(string name)
    {
        Kept kept = _kept[name];
        _replyQueue = kept.ReplyQueue;
        await DeclareReplyQueueAsync(kept.ReplyQueue);
        await _channel.QueuePurgeAsync(kept.ReplyQueue);

        IChannel publisher = await _connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        await using (publisher)
        {
            for (int i = 0; i < kept.Messages.Count; i += RestoreBatch)
            {
                Task[] confirms = [.. kept.Messages.Skip(i).Take(RestoreBatch)
                    .Select(m => publisher.BasicPublishAsync(m.Exchange, m.RoutingKey, mandatory: true, m.Properties, m.Body).AsTask())];
                await Task.WhenAll(confirms);
            }
        }

        long queued = await QueuedAsync();
        if (queued != kept.Messages.Count)
        {
            throw new InvalidOperationException($"{queued} messages in '{BenchTasks.Queue}' after the restore, not {kept.Messages.Count}");
        }
    }

    /// <summary><c>rabbitmqctl list_queues</c> until <c>celery</c> shows 0 ready and 0 unacknowledged messages.</summary>
    public async Task<string> ConfirmEmptyAsync(TimeSpan timeout)
    {
        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            string row = await ListQueueAsync(BenchTasks.Queue);
            if (row.Split('\t', StringSplitOptions.TrimEntries) is [_, "0", "0", ..])
            {
                return string.Create(CultureInfo.InvariantCulture,
                    $"rabbitmqctl list_queues name messages messages_unacknowledged consumers: {row.Replace('\t', ' ')}, {Stopwatch.GetElapsedTime(start).TotalMilliseconds:0} ms after the drain");
            }

            if (Stopwatch.GetElapsedTime(start) > timeout)
            {
                throw new TimeoutException($"'{BenchTasks.Queue}' not empty {timeout.TotalSeconds:0} s after the drain: {row}");
            }

            await Task.Delay(200);
        }
    }

    /// <summary>Consumes the reply queue: exactly <paramref name="count"/> results, one per task, all SUCCESS with an integer result.</summary>
    public async Task VerifyResultsAsync(int count)
    {
        string reply = _replyQueue ?? throw new InvalidOperationException("no reply queue: nothing was restored");
        long stored = await CountAsync(reply);
        if (stored != count)
        {
            throw new InvalidOperationException($"{stored} results in the reply queue {reply}, not {count}");
        }

        var check = new ResultCheck();
        foreach (Message m in await TakeAsync(reply, count))
        {
            check.Add("correlation_id " + m.Properties.CorrelationId, m.Body);
        }

        check.ThrowUnless(count);
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.CloseAsync();
        await _connection.DisposeAsync();
    }

    /// <summary>One row of <c>rabbitmqctl list_queues name messages messages_unacknowledged consumers</c> (tab-separated).</summary>
    private async Task<string> ListQueueAsync(string queue)
    {
        string rows = await _server.CtlAsync("list_queues", "-q", "--no-table-headers", "name", "messages", "messages_unacknowledged", "consumers");
        return rows.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .FirstOrDefault(r => r.StartsWith(queue + "\t", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"rabbitmqctl list_queues shows no queue '{queue}': {rows}");
    }

    /// <summary>The reply queue as Celery's rpc:// client declares it (the same arguments, or the broker refuses).</summary>
    private Task<QueueDeclareOk> DeclareReplyQueueAsync(string queue) =>
        _channel.QueueDeclareAsync(queue, durable: false, exclusive: false, autoDelete: true, new Dictionary<string, object?> { ["x-expires"] = 86_400_000 });

    /// <summary>The ready messages of a queue by passive declare; 0 if it does not exist (which closes the channel: a new one is opened).</summary>
    private async Task<long> CountAsync(string queue)
    {
        try
        {
            return (await _channel.QueueDeclarePassiveAsync(queue)).MessageCount;
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
        {
            await _channel.DisposeAsync();
            _channel = await _connection.CreateChannelAsync();
            return 0;
        }
    }

    private async Task<long> WaitForCountAsync(string queue, int count, TimeSpan timeout)
    {
        long start = Stopwatch.GetTimestamp();
        long n;
        while ((n = await CountAsync(queue)) != count)
        {
            if (Stopwatch.GetElapsedTime(start) > timeout)
            {
                throw new TimeoutException($"'{queue}' holds {n} messages, not {count}, {timeout.TotalSeconds:0} s after the client ended");
            }

            await Task.Delay(50);
        }

        return n;
    }

    /// <summary>Consumes (auto-ack) <paramref name="count"/> messages from a queue into memory, then cancels.</summary>
    private async Task<List<Message>> TakeAsync(string queue, int count)
    {
        var messages = new List<Message>(count);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        IChannel channel = await _connection.CreateChannelAsync();
        await using (channel)
        {
            var consumer = new AsyncEventingBasicConsumer(channel);
            consumer.ReceivedAsync += (_, e) =>
            {
                // One delivery at a time (the channel's dispatcher runs the handler serially); the client reuses the
                // body's buffer after the handler returns. The queue was counted: more than that is a broken run.
                if (messages.Count < count)
                {
                    messages.Add(new Message(e.Exchange, e.RoutingKey, new BasicProperties(e.BasicProperties), e.Body.ToArray()));
                }
                else
                {
                    done.TrySetException(new InvalidOperationException($"more than the {count} messages counted arrived from '{queue}'"));
                }

                if (messages.Count == count)
                {
                    done.TrySetResult();
                }

                return Task.CompletedTask;
            };
            string tag = await channel.BasicConsumeAsync(queue, autoAck: true, consumer);
            try
            {
                await done.Task.WaitAsync(s_takeTimeout);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"took {messages.Count} of {count} messages from '{queue}' in {s_takeTimeout.TotalSeconds:0} s");
            }

            await channel.BasicCancelAsync(tag);
        }

        return messages;
    }

    private sealed record Message(string Exchange, string RoutingKey, BasicProperties Properties, byte[] Body);

    private sealed record Kept(List<Message> Messages, string ReplyQueue);
}
