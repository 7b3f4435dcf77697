using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Celeriac.Diagnostics;
using Celeriac.Protocol;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Events;

/// <summary>
/// Reads the cluster's events, Celeriac's and Celery's alike, as Celery's <c>EventReceiver</c>: it subscribes to the
/// <c>celeryev</c> exchange for every routing key (on AMQP a queue <c>celeryev.&lt;uuid&gt;</c> of its own), expands
/// a worker's <c>task.multi</c> lists into single events, syncs the app's clock with each, and skips a message it
/// cannot read with one log line.
/// <code>
/// await foreach (CeleryEvent e in new EventReceiver(app).ReadAsync(ct)) { state.Apply(e); }
/// </code>
/// </summary>
public sealed class EventReceiver
{
    private readonly Func<ITransport> _transport;
    private readonly LamportClock _clock;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<TransportMessage, TransportMessage> _sign = static m => m;
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A receiver on the app's broker, clock and time.</summary>
    public EventReceiver(CeleriacApp app)
        : this(() => app!.Transport, (app ?? throw new ArgumentNullException(nameof(app))).Clock, app.Options.TimeProvider, app.Options.LoggerFactory)
    {
        // Its heartbeat request goes on the control mailbox: signed, as the app's other control messages, when signing is on.
        _sign = app.SignIfOn;
    }

    /// <summary>A receiver on a transport; <paramref name="clock"/> is synced with every event read (a new one if null).</summary>
    public EventReceiver(ITransport transport, LamportClock? clock = null, TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
        : this(() => transport, clock ?? new LamportClock(), time, loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(transport);
    }

    private EventReceiver(Func<ITransport> transport, LamportClock clock, TimeProvider? time, ILoggerFactory? loggerFactory)
    {
        _transport = transport;
        _clock = clock;
        _time = time ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Celeriac.Events");
    }

    /// <summary>
    /// Events held for a reader that is behind; beyond it the oldest are dropped (counted and logged), so that a slow
    /// reader never holds up the broker connection. <value>10,000</value>
    /// </summary>
    public int Capacity { get; init; } = 10_000;

    /// <summary>The binding key on AMQP's topic exchange (<c>#</c>: every event; <c>task.#</c>: task events only). <value>#</value></summary>
    public string RoutingKey { get; init; } = "#";

    /// <summary>
    /// Asks every worker for a heartbeat as reading starts (Celery's <c>wakeup_workers</c>: a <c>heartbeat</c>
    /// broadcast), so that live workers show up at once instead of within their heartbeat interval. <value>true</value>
    /// </summary>
    public bool WakeupWorkers { get; init; } = true;

    /// <summary>Completes once the first <see cref="ReadAsync"/> has subscribed: events published after it are read.</summary>
    public Task Subscribed => _subscribed.Task;

    /// <summary>The events, in the order they arrive, until <paramref name="ct"/> is cancelled.</summary>
    public async IAsyncEnumerable<CeleryEvent> ReadAsync([EnumeratorCancellation] CancellationToken ct = default)
    {
        long dropped = 0;
        var channel = Channel.CreateBounded<CeleryEvent>(
            new BoundedChannelOptions(Math.Max(1, Capacity)) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            _ => Interlocked.Increment(ref dropped));
        ITransport transport = _transport();
        var binding = new SubscriberBinding("celeryev." + Guid.NewGuid().ToString(), RoutingKey);
        IAsyncDisposable subscription = await transport.SubscribeAsync(EventMessages.Exchange, m =>
        {
            Receive(m, channel.Writer);
            return ValueTask.CompletedTask;
        }, binding, ct).ConfigureAwait(false);
        await using ConfiguredAsyncDisposable unsubscribe = subscription.ConfigureAwait(false);
        _subscribed.TrySetResult();
        if (WakeupWorkers)
        {
            await WakeUpAsync(transport, ct).ConfigureAwait(false);
        }

        while (true)
        {
            try
            {
                if (!await channel.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
                {
                    yield break;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                yield break;
            }

            while (channel.Reader.TryRead(out CeleryEvent? e))
            {
                if (Interlocked.Exchange(ref dropped, 0) is > 0 and long lost)
                {
                    Log.ReceiverDropped(_logger, lost, Capacity);
                }

                yield return e;
            }
        }
    }

    /// <summary>
    /// Reads one message: one event, or a list of them (Celery 4+'s buffered <c>&lt;group&gt;.multi</c>). What is not
    /// JSON, not an event or not a list of events is skipped with one log line; it never ends the reading.
    /// </summary>
    private void Receive(TransportMessage message, ChannelWriter<CeleryEvent> writer)
    {
        object? body;
        try
        {
            body = message.ContentType is "application/json" or "" ? JsonValues.Parse(message.Body.Span) : null;
        }
        catch (JsonException ex)
        {
            Log.BadEvent(_logger, message.RoutingKey, "not JSON: " + ex.Message);
            return;
        }

        if (body is null && message.ContentType is not ("application/json" or ""))
        {
            Log.BadEvent(_logger, message.RoutingKey, $"content type '{message.ContentType}' (only application/json is read)");
            return;
        }

        switch (body)
        {
            case Dictionary<string, object?> one:
                Accept(one, message, writer);
                break;
            case List<object?> many:
                foreach (object? item in many)
                {
                    if (item is Dictionary<string, object?> e)
                    {
                        Accept(e, message, writer);
                    }
                    else
                    {
                        Log.BadEvent(_logger, message.RoutingKey, "a list item that is not an event object");
                    }
                }

                break;
            default:
                Log.BadEvent(_logger, message.RoutingKey, "neither an event object nor a list of them");
                break;
        }
    }

    private void Accept(Dictionary<string, object?> fields, TransportMessage message, ChannelWriter<CeleryEvent> writer)
    {
        if (fields.GetValueOrDefault("type") is not string { Length: > 0 } type)
        {
            Log.BadEvent(_logger, message.RoutingKey, "an event without a type");
            return;
        }

        Adjust(type, fields);
        writer.TryWrite(new CeleryEvent(fields));
    }

    /// <summary>
    /// Celery's <c>event_from_message</c>: a client's <c>task-sent</c> clock is not trusted (clients never sync), so it
    /// is set just below the receiver's; any other moves the receiver's clock past it (or gets the receiver's next value
    /// when it has none). The timestamp is moved from the sender's zone to the receiver's, and <c>local_received</c> set.
    /// </summary>
    private void Adjust(string type, Dictionary<string, object?> fields)
    {
        if (type == "task-sent")
        {
            long value = _clock.Value;
            long clock = (value == 0 ? 1 : value) - 1;
            fields["clock"] = clock;
            _clock.Adjust(clock);
        }
        else if (fields.GetValueOrDefault("clock") is long clock)
        {
            _clock.Adjust(clock);
        }
        else
        {
            fields["clock"] = _clock.Forward();
        }

        DateTimeOffset now = _time.GetUtcNow();
        if (fields.GetValueOrDefault("timestamp") is { } timestamp and (double or long)
            && fields.GetValueOrDefault("utcoffset") is { } offset and (long or double))
        {
            double ts = Convert.ToDouble(timestamp, System.Globalization.CultureInfo.InvariantCulture);
            double theirs = Convert.ToDouble(offset, System.Globalization.CultureInfo.InvariantCulture);
            fields["timestamp"] = ts - ((theirs - EventMessages.UtcOffset(_time)) * 3600);
        }

        fields["local_received"] = EventMessages.Timestamp(now);
    }

    /// <summary>Celery's <c>wakeup_workers</c>: a <c>heartbeat</c> broadcast on the pidbox; a failure only delays the first heartbeats.</summary>
    private async Task WakeUpAsync(ITransport transport, CancellationToken ct)
    {
        try
        {
            TransportMessage request = Control.Mailbox.Request("heartbeat", new Dictionary<string, object?>(), destination: null, replyTo: null, _time, TimeSpan.FromSeconds(5));
            await transport.PublishAsync(Control.Mailbox.Exchange, "", [_sign(request)], ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.EventsNotSent(_logger, 1, "heartbeat request", ex);
        }
    }
}
