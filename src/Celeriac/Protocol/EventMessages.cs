using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Celeriac.Protocol;
using Celeriac.Transport;

// In Protocol/ because it is wire format that both sides write: the worker's dispatcher (Events) and the app's
// task-sent event (App sits below Events); the namespace is the one event users import.
namespace Celeriac.Events;

/// <summary>
/// Celery's events on the wire: a JSON object per event, <c>{"hostname", "utcoffset", "pid", "clock", ...fields,
/// "timestamp", "type"}</c>, published on the <c>celeryev</c> exchange (topic on AMQP, a PUBLISH channel on Redis) with
/// the type as routing key (<c>task-succeeded</c> → <c>task.succeeded</c>), a <c>hostname</c> header and delivery mode
/// 1 (transient). A worker's buffered task events go as one JSON list on <c>task.multi</c>.
/// </summary>
public static class EventMessages
{
    /// <summary>The exchange of events (Celery's <c>event_exchange</c>).</summary>
    public const string Exchange = "celeryev";

    /// <summary>The routing key of an event type: its dashes become dots (<c>worker-heartbeat</c> → <c>worker.heartbeat</c>).</summary>
    public static string RoutingKey(string type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return type.Replace('-', '.');
    }

    /// <summary>The routing key of a buffered group's list (<c>task.multi</c>).</summary>
    public static string MultiRoutingKey(string group) => group + ".multi";

    /// <summary>The group of an event type, the part before the first dash (<c>task</c>, <c>worker</c>).</summary>
    public static string GroupOf(string type)
    {
        ArgumentNullException.ThrowIfNull(type);
        int dash = type.IndexOf('-', StringComparison.Ordinal);
        return dash < 0 ? type : type[..dash];
    }

    /// <summary>Seconds since the Unix epoch as a float, as Celery's <c>time.time()</c> stamps events.</summary>
    public static double Timestamp(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / (double)TimeSpan.TicksPerSecond;

    /// <summary>
    /// Celery's <c>utcoffset()</c>: the local zone's offset in hours with Python's <c>time.timezone</c> sign (hours
    /// <em>west</em> of UTC, floored), which receivers use to localize timestamps.
    /// </summary>
    public static int UtcOffset(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        TimeSpan offset = time.LocalTimeZone.GetUtcOffset(time.GetUtcNow());
        return (int)Math.Floor(-offset.TotalSeconds / 3600);
    }

    /// <summary>The message that carries an event body (one event object, or a list of them).</summary>
    public static TransportMessage Message(string hostname, ReadOnlyMemory<byte> body) => new()
    {
        Body = body,
        DeliveryMode = 1,
        Headers = new Dictionary<string, object?>(1, StringComparer.Ordinal) { ["hostname"] = hostname },
    };

    /// <summary>Encodes one event whose fields are plain JSON values (see <see cref="JsonValues"/>).</summary>
    public static byte[] Encode(EventStamp stamp, string type, IEnumerable<KeyValuePair<string, object?>>? fields)
    {
        ArgumentNullException.ThrowIfNull(type);
        return Encode(stamp, type, fields, static (w, f) =>
        {
            if (f is null)
            {
                return;
            }

            foreach (KeyValuePair<string, object?> kv in f)
            {
                w.WritePropertyName(kv.Key);
                JsonValues.Write(w, kv.Value);
            }
        });
    }

    /// <summary>
    /// Encodes one event: the stamp's fields first, then what <paramref name="fields"/> writes, then the timestamp and
    /// the type, in Celery's order. The writer is reused per thread, so the hot path allocates only the bytes.
    /// </summary>
    internal static byte[] Encode<TState>(EventStamp stamp, string type, TState state, Action<Utf8JsonWriter, TState> fields) =>
        EncodeScratch(stamp, JsonEncodedText.Encode(stamp.Hostname, CeleryJson.Options.Encoder), JsonEncodedText.Encode(type, CeleryJson.Options.Encoder), state, fields).ToArray();

    /// <summary>
    /// Encodes one event into this thread's scratch buffer and returns its bytes, valid until the thread's next call:
    /// the dispatcher copies them straight into the list it is building, so an event costs no allocation of its own.
    /// The hostname and type come encoded already: they are the same for thousands of events.
    /// </summary>
    internal static ReadOnlySpan<byte> EncodeScratch<TState>(EventStamp stamp, JsonEncodedText hostname, JsonEncodedText type, TState state, Action<Utf8JsonWriter, TState> fields)
    {
        (ArrayBufferWriter<byte> buffer, Utf8JsonWriter w) = Writer();

        // Reset first: a field writer that threw last time left the cached writer mid-object.
        buffer.ResetWrittenCount();
        w.Reset();
        w.WriteStartObject();
        w.WriteString("hostname"u8, hostname);
        w.WriteNumber("utcoffset"u8, stamp.UtcOffset);
        w.WriteNumber("pid"u8, stamp.Pid);
        w.WriteNumber("clock"u8, stamp.Clock);
        fields(w, state);
        w.WritePropertyName("timestamp"u8);
        if (stamp.UnixTicks > 0)
        {
            WriteSeconds(w, stamp.UnixTicks);
        }
        else
        {
            WriteFloat(w, stamp.Timestamp);
        }

        w.WriteString("type"u8, type);
        w.WriteEndObject();
        w.Flush();
        return buffer.WrittenSpan;
    }

    /// <summary>
    /// Seconds since the epoch from ticks, as a float with up to seven decimals (<c>1795482800.5686548</c>): what
    /// Python's <c>time.time()</c> prints, written with integer formatting, which is several times cheaper than a
    /// double's shortest round trip, paid on every event.
    /// </summary>
    private static void WriteSeconds(Utf8JsonWriter w, long ticks)
    {
        Span<byte> text = stackalloc byte[32];
        long seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long fraction);
        _ = System.Buffers.Text.Utf8Formatter.TryFormat(seconds, text, out int at);
        text[at++] = (byte)'.';
        _ = System.Buffers.Text.Utf8Formatter.TryFormat(fraction, text[at..], out int digits, new System.Buffers.StandardFormat('D', 7));
        at += digits;
        while (text[at - 1] == (byte)'0' && text[at - 2] != (byte)'.')
        {
            at--;
        }

        w.WriteRawValue(text[..at], skipInputValidation: true);
    }

    /// <summary>
    /// The <c>task-sent</c> event a client sends after publishing a task (Celery's <c>task_send_sent_event</c>):
    /// uuid, root_id, parent_id, name, args and kwargs (their reprs), retries, eta, expires, then where it went.
    /// </summary>
    internal static byte[] TaskSent(EventStamp stamp, IDictionary<string, object?> headers, string queue, string exchange, string routingKey) =>
        Encode(stamp, "task-sent", (headers, queue, exchange, routingKey), static (w, s) =>
        {
            IDictionary<string, object?> h = s.headers;
            WriteHeader(w, "uuid"u8, h, "id");
            WriteHeader(w, "root_id"u8, h, "root_id");
            WriteHeader(w, "parent_id"u8, h, "parent_id");
            WriteHeader(w, "name"u8, h, "task");
            WriteHeader(w, "args"u8, h, "argsrepr");
            WriteHeader(w, "kwargs"u8, h, "kwargsrepr");
            w.WriteNumber("retries"u8, h.TryGetValue("retries", out object? r) && r is long retries ? retries : 0);
            WriteHeader(w, "eta"u8, h, "eta");
            WriteHeader(w, "expires"u8, h, "expires");
            w.WriteString("queue"u8, s.queue);
            w.WriteString("exchange"u8, s.exchange);
            w.WriteString("routing_key"u8, s.routingKey);
        });

    private static void WriteHeader(Utf8JsonWriter w, ReadOnlySpan<byte> name, IDictionary<string, object?> headers, string key)
    {
        if (headers.TryGetValue(key, out object? value) && value is string text)
        {
            w.WriteString(name, text);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    /// <summary>
    /// Writes a double as Python's json writes a float: a whole value keeps <c>.0</c>, so that Python reads a float
    /// (timestamps, <c>freq</c>, <c>runtime</c>, <c>loadavg</c>); formatted without allocating.
    /// </summary>
    internal static void WriteFloat(Utf8JsonWriter w, double value)
    {
        if (!double.IsFinite(value))
        {
            w.WriteNullValue();
            return;
        }

        Span<byte> text = stackalloc byte[40];
        if (!value.TryFormat(text, out int written, "R", CultureInfo.InvariantCulture))
        {
            w.WriteNumberValue(value);
            return;
        }

        if (text[..written].IndexOfAny("."u8[0], (byte)'E', (byte)'e') < 0)
        {
            text[written++] = (byte)'.';
            text[written++] = (byte)'0';
        }

        w.WriteRawValue(text[..written], skipInputValidation: true);
    }

    [ThreadStatic]
    private static (ArrayBufferWriter<byte> Buffer, Utf8JsonWriter Writer)? t_writer;

    private static (ArrayBufferWriter<byte> Buffer, Utf8JsonWriter Writer) Writer()
    {
        if (t_writer is { } cached)
        {
            return cached;
        }

        var buffer = new ArrayBufferWriter<byte>(512);
        var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = CeleryJson.Options.Encoder, SkipValidation = true });
        t_writer = (buffer, writer);
        return (buffer, writer);
    }
}

/// <summary>What every event carries besides its own fields: who sent it, when, and its clock value.</summary>
/// <param name="Hostname">The sender's node name (a worker's <c>-n</c>; a client's <c>gen&lt;pid&gt;@&lt;host&gt;</c>).</param>
/// <param name="UtcOffset">Celery's <c>utcoffset()</c> (see <see cref="EventMessages.UtcOffset"/>).</param>
/// <param name="Pid">The sender's process id.</param>
/// <param name="Clock">The sender's Lamport clock after this event.</param>
/// <param name="Timestamp">Seconds since the Unix epoch.</param>
public readonly record struct EventStamp(string Hostname, int UtcOffset, int Pid, long Clock, double Timestamp)
{
    /// <summary>The timestamp as ticks since the epoch, when known: written exactly, and faster than the double.</summary>
    internal long UnixTicks { get; init; }
}
