using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Celeriac.Beat;

/// <summary>
/// When a periodic entry runs, with Celery's meaning: <see cref="IntervalSchedule"/> (<c>schedule(run_every)</c>),
/// <see cref="CrontabSchedule"/> (<c>crontab</c>), <see cref="SolarSchedule"/> (<c>solar</c>) and <see cref="ClockedSchedule"/> (one-off).
/// A schedule is a pure function of time: the next run after an instant, in the entry's time zone.
/// </summary>
public abstract class BeatSchedule
{
    /// <summary>The kind as the store and configuration name it: <c>interval</c>, <c>crontab</c>, <c>solar</c>, <c>clocked</c>.</summary>
    public abstract string Kind { get; }

    /// <summary>
    /// The first run strictly after <paramref name="after"/>, reckoned in <paramref name="zone"/> (only calendar schedules
    /// use it), or <see langword="null"/> when the schedule never runs again.
    /// </summary>
    public abstract DateTimeOffset? NextAfter(DateTimeOffset after, TimeZoneInfo zone);

    /// <summary>Writes the schedule as the store keeps it: <c>{"type": kind, ...}</c>.</summary>
    public abstract void WriteTo(Utf8JsonWriter writer);

    /// <summary>The schedule as the store keeps it.</summary>
    public string ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer))
        {
            WriteTo(w);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// Reads a schedule as Celery's <c>beat_schedule</c> and the store give it: a number of seconds (an interval), a
    /// five-field crontab string (<c>"0 3 * * *"</c>), or an object with <c>type</c>.
    /// </summary>
    /// <exception cref="FormatException">Not a schedule, with the reason.</exception>
    public static BeatSchedule FromJson(JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Number:
                return new IntervalSchedule(TimeSpan.FromSeconds(value.GetDouble()));
            case JsonValueKind.String:
                return Parse(value.GetString()!);
            case JsonValueKind.Object when value.TryGetProperty("type", out JsonElement type) && type.ValueKind == JsonValueKind.String:
                string kind = type.GetString()!;
                return kind switch
                {
                    "interval" => new IntervalSchedule(TimeSpan.FromSeconds(Number(value, "seconds"))),
                    "clocked" => new ClockedSchedule(Time(value, "at")),
                    "crontab" => CrontabSchedule.Read(value),
                    "solar" => SolarSchedule.Read(value),
                    _ => throw new FormatException($"unknown schedule type '{kind}' (known: interval, crontab, solar, clocked)"),
                };
            default:
                throw new FormatException($"a schedule is a number of seconds, a crontab string or an object with a type, not {value.GetRawText()}");
        }
    }

    /// <summary>Reads a schedule from text: a number of seconds, or a five-field crontab (<c>crontab.from_string</c>).</summary>
    /// <exception cref="FormatException">Neither, with the reason.</exception>
    public static BeatSchedule Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds)
            ? new IntervalSchedule(TimeSpan.FromSeconds(seconds))
            : CrontabSchedule.FromString(text);
    }

    private static double Number(JsonElement value, string name) =>
        value.TryGetProperty(name, out JsonElement n) && n.ValueKind == JsonValueKind.Number ? n.GetDouble() : throw new FormatException($"schedule needs a number '{name}'");

    private static DateTimeOffset Time(JsonElement value, string name) =>
        value.TryGetProperty(name, out JsonElement t) && t.ValueKind == JsonValueKind.String
        && DateTimeOffset.TryParse(t.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset at)
            ? at
            : throw new FormatException($"schedule needs an ISO-8601 time '{name}'");
}

/// <summary>Celery's <c>schedule(run_every)</c>: every so long after the last run (sub-second allowed).</summary>
public sealed class IntervalSchedule : BeatSchedule
{
    /// <summary>Creates an interval; it must be positive.</summary>
    /// <exception cref="FormatException">Zero or negative.</exception>
    public IntervalSchedule(TimeSpan every)
    {
        if (every <= TimeSpan.Zero)
        {
            throw new FormatException($"an interval must be more than 0 seconds, not {every.TotalSeconds.ToString(CultureInfo.InvariantCulture)}");
        }

        Every = every;
    }

    /// <summary>The interval.</summary>
    public TimeSpan Every { get; }

    /// <inheritdoc />
    public override string Kind => "interval";

    /// <inheritdoc />
    public override DateTimeOffset? NextAfter(DateTimeOffset after, TimeZoneInfo zone) => after + Every;

    /// <inheritdoc />
    public override void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteString("type", Kind);
        writer.WriteNumber("seconds", Every.TotalSeconds);
        writer.WriteEndObject();
    }

    /// <summary>Celery's repr: <c>&lt;freq: 10.00 seconds&gt;</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"<freq: {Every.TotalSeconds:0.00} seconds>");
}

/// <summary>A one-off run at a time (django-celery-beat's clocked schedule).</summary>
/// <param name="at">When it runs.</param>
public sealed class ClockedSchedule(DateTimeOffset at) : BeatSchedule
{
    /// <summary>When it runs.</summary>
    public DateTimeOffset At { get; } = at;

    /// <inheritdoc />
    public override string Kind => "clocked";

    /// <inheritdoc />
    public override DateTimeOffset? NextAfter(DateTimeOffset after, TimeZoneInfo zone) => At > after ? At : null;

    /// <inheritdoc />
    public override void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteString("type", Kind);
        writer.WriteString("at", Protocol.CeleryJson.FormatIso(At));
        writer.WriteEndObject();
    }

    /// <inheritdoc />
    public override string ToString() => "<clocked: " + Protocol.CeleryJson.FormatIso(At) + ">";
}
