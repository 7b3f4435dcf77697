using System.Buffers;
using System.Text.Json;
using Celeriac.Diagnostics;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Events;

/// <summary>
/// Sends events as Celery's <c>EventDispatcher</c> does: each stamped with the sender's hostname, utcoffset, pid, the
/// app's Lamport clock and a timestamp, on the <c>celeryev</c> exchange with the type as routing key. Events of a
/// buffered group (<c>task</c>, as Celery's worker buffers them) are collected and sent as one JSON list on
/// <c>task.multi</c> once <see cref="BufferLimit"/> are waiting or <see cref="FlushInterval"/> after the first, so a
/// busy worker sends one message per batch and a lone event is not held long; other events are sent at once.
/// Dispose it to send what is buffered.
/// </summary>
public sealed class EventDispatcher : IAsyncDisposable
{
    /// <summary>Celery's <c>buffer_limit</c>.</summary>
    public const int DefaultBufferLimit = 24;

    private readonly Func<ITransport> _transport;
    private readonly LamportClock _clock;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _pid = Environment.ProcessId;
    private readonly Lock _gate = new();
    private readonly AsyncPulse _wake = new();
    private readonly SemaphoreSlim _publishGate = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly string _multiRoutingKey;
    private readonly JsonEncodedText _hostnameText;
    private readonly ITimer _timer;
    // The list being built ('[e1,e2,...'), the finished lists waiting to be sent, and how many events both hold.
    private readonly ArrayBufferWriter<byte> _open = new(8192);
    private int _openCount;
    private List<byte[]> _sealed = [];
    private List<byte[]> _spare = [];
    private int _buffered;
    private Task? _flusher;
    private int _due;
    private int _timerArmed;
    private long _dropped;
    private long _droppedTotal;
    private int _utcOffset;
    private long _utcOffsetAt = long.MinValue;
    private int _disposed;

    /// <summary>A dispatcher on the app's broker, clock and time, sending as <paramref name="hostname"/> (a worker's node name).</summary>
    public EventDispatcher(CeleriacApp app, string hostname)
        : this(() => app!.Transport, hostname, (app ?? throw new ArgumentNullException(nameof(app))).Clock, app.Options.TimeProvider, app.Options.LoggerFactory)
    {
    }

    /// <summary>A dispatcher on a transport, sending as <paramref name="hostname"/> with <paramref name="clock"/>.</summary>
    public EventDispatcher(ITransport transport, string hostname, LamportClock clock, TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
        : this(() => transport, hostname, clock, time, loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(transport);
    }

    private EventDispatcher(Func<ITransport> transport, string hostname, LamportClock clock, TimeProvider? time, ILoggerFactory? loggerFactory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(hostname);
        ArgumentNullException.ThrowIfNull(clock);
        _transport = transport;
        Hostname = hostname;
        _hostnameText = JsonEncodedText.Encode(hostname, Protocol.CeleryJson.Options.Encoder);
        _clock = clock;
        _time = time ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Celeriac.Events");
        _multiRoutingKey = EventMessages.MultiRoutingKey("task");

        // The flush window is on the system clock, not the app's: it is how long a lone event waits for company, not
        // logic about time, and a fake clock that a test never moves must not hold events back.
        _timer = TimeProvider.System.CreateTimer(static s => ((EventDispatcher)s!).OnFlushTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The node name events are sent as.</summary>
    public string Hostname { get; }

    /// <summary>Buffered events sent as soon as this many wait (Celery's <c>buffer_limit</c>). <value>24</value></summary>
    public int BufferLimit { get; init; } = DefaultBufferLimit;

    /// <summary>How long the first buffered event waits for others before the buffer is sent. <value>50 ms</value></summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// The most buffered events held while the broker does not take them; beyond it new task events are dropped
    /// (counted and logged), so a broker outage cannot grow the worker's memory. <value>10,000</value>
    /// </summary>
    public int MaxBuffered { get; init; } = 10_000;

    /// <summary>Task events dropped because the buffer was full, since the dispatcher was made.</summary>
    public long Dropped => Interlocked.Read(ref _droppedTotal);

    /// <summary>
    /// Sends an event: a <c>task-*</c> event joins the buffer (sent within <see cref="FlushInterval"/>), any other is
    /// published now. <paramref name="fields"/> are plain JSON values (strings, numbers, booleans, null, lists, dictionaries).
    /// </summary>
    public ValueTask SendAsync(string type, IEnumerable<KeyValuePair<string, object?>>? fields = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(type);
        if (EventMessages.GroupOf(type) == "task")
        {
            Buffer(JsonEncodedText.Encode(type, Protocol.CeleryJson.Options.Encoder), fields, WriteFields);
            return ValueTask.CompletedTask;
        }

        return PublishAsync(type, fields, WriteFields, ct);
    }

    /// <summary>Sends what is buffered now.</summary>
    public Task FlushAsync(CancellationToken ct = default) => FlushBufferAsync(ct);

    /// <summary>
    /// Stamps an event and appends it to the list being built, which is sealed (a message body) once it holds
    /// <see cref="BufferLimit"/>; wakes the flusher when a list is sealed, and arms the flush window for a first event.
    /// </summary>
    internal void Buffer<TState>(JsonEncodedText type, TState state, Action<Utf8JsonWriter, TState> fields)
    {
        ReadOnlySpan<byte> encoded = EventMessages.EncodeScratch(Stamp(), _hostnameText, type, state, fields);
        bool sealedOne = false;
        bool first = false;
        lock (_gate)
        {
            if (_buffered >= MaxBuffered)
            {
                Interlocked.Increment(ref _dropped);
                Interlocked.Increment(ref _droppedTotal);
                return;
            }

            _open.GetSpan(1)[0] = _openCount == 0 ? (byte)'[' : (byte)',';
            _open.Advance(1);
            _open.Write(encoded);
            _openCount++;
            first = ++_buffered == 1;
            if (_openCount >= BufferLimit)
            {
                SealOpenList();
                sealedOne = true;
            }
        }

        _flusher ??= StartFlusher();
        if (sealedOne)
        {
            _wake.Pulse();
        }
        else if (first && Interlocked.CompareExchange(ref _timerArmed, 1, 0) == 0)
        {
            // Armed once per window, not per buffer: a busy worker's lists go when full, and the timer is a bound.
            _timer.Change(FlushInterval, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Closes the list being built into a message body (under the gate).</summary>
    private void SealOpenList()
    {
        _open.GetSpan(1)[0] = (byte)']';
        _open.Advance(1);
        _sealed.Add(_open.WrittenSpan.ToArray());
        _open.ResetWrittenCount();
        _openCount = 0;
    }

    /// <summary>Stamps an event and publishes it alone, now.</summary>
    internal async ValueTask PublishAsync<TState>(string type, TState state, Action<Utf8JsonWriter, TState> fields, CancellationToken ct)
    {
        byte[] body = EventMessages.EncodeScratch(Stamp(), _hostnameText, JsonEncodedText.Encode(type, Protocol.CeleryJson.Options.Encoder), state, fields).ToArray();
        await _transport().PublishAsync(EventMessages.Exchange, EventMessages.RoutingKey(type), [EventMessages.Message(Hostname, body)], ct).ConfigureAwait(false);
    }

    private EventStamp Stamp()
    {
        DateTimeOffset now = _time.GetUtcNow();

        // The zone's offset changes twice a year at most: read it once a minute, not per event.
        long minute = now.UtcTicks / TimeSpan.TicksPerMinute;
        if (Volatile.Read(ref _utcOffsetAt) != minute)
        {
            _utcOffset = EventMessages.UtcOffset(_time);
            Volatile.Write(ref _utcOffsetAt, minute);
        }

        long ticks = now.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        return new EventStamp(Hostname, _utcOffset, _pid, _clock.Forward(), ticks / (double)TimeSpan.TicksPerSecond) { UnixTicks = ticks };
    }

    private Task StartFlusher()
    {
        lock (_gate)
        {
            return _flusher ??= Task.Run(FlushLoopAsync);
        }
    }

    private void OnFlushTimer()
    {
        Volatile.Write(ref _timerArmed, 0);
        Volatile.Write(ref _due, 1);
        _wake.Pulse();
    }

    /// <summary>
    /// Sends the buffer whenever it is due: full, or its first event's window has passed. One publish at a time, so a
    /// busy worker's events queue up behind it into the next list.
    /// </summary>
    private async Task FlushLoopAsync()
    {
        CancellationToken stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            Task wake = _wake.WaitAsync();
            bool due;
            lock (_gate)
            {
                due = _sealed.Count > 0 || (_openCount > 0 && Volatile.Read(ref _due) != 0);
            }

            if (!due)
            {
                try
                {
                    await wake.WaitAsync(stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            Volatile.Write(ref _due, 0);
            await FlushBufferAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task FlushBufferAsync(CancellationToken ct)
    {
        await _publishGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            List<byte[]> lists;
            int count;
            lock (_gate)
            {
                if (_openCount > 0)
                {
                    SealOpenList();
                }

                if (_sealed.Count == 0)
                {
                    return;
                }

                lists = _sealed;
                _sealed = _spare;
                _spare = lists;
                count = _buffered;
                _buffered = 0;
            }

            long dropped = Interlocked.Exchange(ref _dropped, 0);
            if (dropped > 0)
            {
                Log.EventsDropped(_logger, MaxBuffered, dropped);
            }

            // Celery sends its whole buffer as one list; lists of at most BufferLimit keep each message small, and
            // go in one publish call, so a broker that batches (Redis pipelines) sends them in one round trip.
            var messages = new TransportMessage[lists.Count];
            for (int i = 0; i < messages.Length; i++)
            {
                messages[i] = EventMessages.Message(Hostname, lists[i]);
            }

            try
            {
                await _transport().PublishAsync(EventMessages.Exchange, _multiRoutingKey, messages, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // Events are transient (delivery mode 1) and monitors cope with gaps: what the broker did not take
                // (after the transport's own retries) is logged and dropped, never thrown at the task that sent it.
                Log.EventsNotSent(_logger, count, "task.multi", ex);
            }
            finally
            {
                lists.Clear();
            }
        }
        finally
        {
            _publishGate.Release();
        }
    }

    private static void WriteFields(Utf8JsonWriter w, IEnumerable<KeyValuePair<string, object?>>? fields)
    {
        if (fields is null)
        {
            return;
        }

        foreach (KeyValuePair<string, object?> kv in fields)
        {
            w.WritePropertyName(kv.Key);
            Protocol.JsonValues.Write(w, kv.Value);
        }
    }

    /// <summary>Stops the flusher and sends what is buffered.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (_flusher is { } flusher)
        {
            await flusher.ConfigureAwait(false);
        }

        await _timer.DisposeAsync().ConfigureAwait(false);
        await FlushBufferAsync(CancellationToken.None).ConfigureAwait(false);
        _stop.Dispose();
        _publishGate.Dispose();
    }
}
