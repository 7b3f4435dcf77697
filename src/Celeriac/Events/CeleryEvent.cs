using System.Globalization;
using System.Numerics;

namespace Celeriac.Events;

/// <summary>
/// One event as a receiver hands it on, Celery's event dict: its <see cref="Type"/> and every field it carried, with
/// the receiver's adjustments (as Celery's <c>EventReceiver.event_from_message</c>): the clock synced with the
/// receiver's, the timestamp moved into the receiver's zone, and <c>local_received</c> added.
/// </summary>
public sealed class CeleryEvent
{
    /// <summary>Wraps fields (plain JSON values: string, long, double, bool, null, lists, dictionaries) as an event.</summary>
    public CeleryEvent(IReadOnlyDictionary<string, object?> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        Fields = fields;
        Type = fields.TryGetValue("type", out object? type) && type is string text ? text : "";
    }

    /// <summary>The event type (<c>task-succeeded</c>, <c>worker-heartbeat</c>, ...).</summary>
    public string Type { get; }

    /// <summary>Every field, in the order it came, plus <c>local_received</c> once received.</summary>
    public IReadOnlyDictionary<string, object?> Fields { get; }

    /// <summary>The group, before the first dash of the type (<c>task</c>, <c>worker</c>).</summary>
    public string Group => EventMessages.GroupOf(Type);

    /// <summary>The sender's node name.</summary>
    public string? Hostname => GetString("hostname");

    /// <summary>The task id of a task event.</summary>
    public string? Uuid => GetString("uuid");

    /// <summary>The sender's Lamport clock value (after the receiver synced with it).</summary>
    public long Clock => GetInt64("clock") ?? 0;

    /// <summary>When it happened, in seconds since the Unix epoch (0 when the event has no timestamp).</summary>
    public double Timestamp => GetDouble("timestamp") ?? 0;

    /// <summary>When the receiver got it, in seconds since the Unix epoch (0 when it was not received).</summary>
    public double LocalReceived => GetDouble("local_received") ?? 0;

    /// <summary>The timestamp as a time.</summary>
    public DateTimeOffset Time => FromSeconds(Timestamp);

    /// <summary>A string field, or null when absent or not a string.</summary>
    public string? GetString(string name) => Fields.TryGetValue(name, out object? v) ? v as string : null;

    /// <summary>A number field as a double (ints too), or null.</summary>
    public double? GetDouble(string name) => Fields.TryGetValue(name, out object? v) ? v switch
    {
        double d => d,
        long l => l,
        BigInteger b => (double)b,
        _ => null,
    } : null;

    /// <summary>An integer field (a whole double too), or null.</summary>
    public long? GetInt64(string name) => Fields.TryGetValue(name, out object? v) ? v switch
    {
        long l => l,
        double d when d == Math.Floor(d) && Math.Abs(d) < 9e18 => (long)d,
        _ => null,
    } : null;

    /// <summary>A boolean field, or null.</summary>
    public bool? GetBoolean(string name) => Fields.TryGetValue(name, out object? v) && v is bool b ? b : null;

    /// <summary>Seconds since the Unix epoch as a time.</summary>
    public static DateTimeOffset FromSeconds(double seconds) =>
        double.IsFinite(seconds) && Math.Abs(seconds) < 2e11
            ? DateTimeOffset.UnixEpoch.AddTicks((long)Math.Round(seconds * TimeSpan.TicksPerSecond))
            : DateTimeOffset.UnixEpoch;

    /// <summary>The event as one line: its type, then its fields (what <c>celery events --dump</c> prints, roughly).</summary>
    public override string ToString() =>
        Type + " " + string.Join(", ", Fields.Where(f => f.Key != "type").Select(f => f.Key + "=" + Convert.ToString(f.Value, CultureInfo.InvariantCulture)));
}
