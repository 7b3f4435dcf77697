using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Celeriac.Beat;

/// <summary>What beat does with runs that fell due while no beat was sending (Hangfire's and Quartz's misfire policies).</summary>
public enum BeatCatchUp
{
    /// <summary>Missed runs are skipped; the entry runs again at its next time. The default.</summary>
    Skip,

    /// <summary>The missed runs are made up for by one run now (Celery's own behaviour), then the schedule goes on.</summary>
    RunOnce,

    /// <summary>Every missed run is sent, oldest first (at most 1,000 at once; beyond that the oldest are skipped).</summary>
    RunAll,
}

/// <summary>
/// A periodic entry, as Celery's <c>beat_schedule</c> names it: a task with its arguments and sending options, a
/// schedule, and the state the store keeps (enabled, last run, run count).
/// </summary>
public sealed record BeatEntry
{
    private static readonly JsonElement s_emptyArgs = JsonDocument.Parse("[]").RootElement.Clone();
    private static readonly JsonElement s_emptyKwargs = JsonDocument.Parse("{}").RootElement.Clone();

    /// <summary>The entry's name (<c>periodic_task_name</c> in the messages it sends).</summary>
    public required string Name { get; init; }

    /// <summary>The task to send.</summary>
    public required string Task { get; init; }

    /// <summary>When it runs.</summary>
    public required BeatSchedule Schedule { get; init; }

    /// <summary>Positional arguments (a JSON array).</summary>
    public JsonElement Args { get; init; } = s_emptyArgs;

    /// <summary>Keyword arguments (a JSON object).</summary>
    public JsonElement Kwargs { get; init; } = s_emptyKwargs;

    /// <summary>The queue to send to (else the app's routing).</summary>
    public string? Queue { get; init; }

    /// <summary>The exchange to send to.</summary>
    public string? Exchange { get; init; }

    /// <summary>The routing key.</summary>
    public string? RoutingKey { get; init; }

    /// <summary>The message priority.</summary>
    public int? Priority { get; init; }

    /// <summary>Extra message headers.</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    /// <summary>Each run expires this long after it was due (Celery's <c>options.expires</c> in seconds).</summary>
    public TimeSpan? Expires { get; init; }

    /// <summary>The IANA time zone its calendar schedule is reckoned in; the app's <c>Timezone</c> when <see langword="null"/>.</summary>
    public string? TimeZone { get; init; }

    /// <summary>What happens to runs missed while no beat ran.</summary>
    public BeatCatchUp CatchUp { get; init; }

    /// <summary>Whether it runs.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>When it last ran (or was added, before its first run).</summary>
    public DateTimeOffset? LastRunAt { get; init; }

    /// <summary>How many times it was sent.</summary>
    public long TotalRunCount { get; init; }

    /// <summary>The zone its schedule is reckoned in: its own <see cref="TimeZone"/>, else <paramref name="defaultZone"/> (the app's).</summary>
    /// <exception cref="FormatException">An unknown zone.</exception>
    public TimeZoneInfo ZoneOr(string defaultZone) => BeatZones.Find(TimeZone ?? defaultZone);

    /// <summary>
    /// Reads an entry in Celery's <c>beat_schedule</c> shape: <c>{"task", "schedule", "args", "kwargs", "options":
    /// {"queue", "exchange", "routing_key", "priority", "headers", "expires"}, "timezone", "catch_up", "enabled"}</c>.
    /// </summary>
    /// <exception cref="FormatException">A clear reason naming the entry.</exception>
    public static BeatEntry FromJson(string name, JsonElement definition)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        try
        {
            if (definition.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("expected an object with task and schedule");
            }

            string task = Text(definition, "task") ?? throw new FormatException("no task");
            if (!definition.TryGetProperty("schedule", out JsonElement schedule))
            {
                throw new FormatException("no schedule");
            }

            JsonElement options = definition.TryGetProperty("options", out JsonElement o) && o.ValueKind == JsonValueKind.Object ? o : default;
            string? zone = Text(definition, "timezone");
            if (zone is not null)
            {
                _ = BeatZones.Find(zone);
            }

            return new BeatEntry
            {
                Name = name,
                Task = task,
                Schedule = BeatSchedule.FromJson(schedule),
                Args = definition.TryGetProperty("args", out JsonElement a) && a.ValueKind == JsonValueKind.Array ? a.Clone() : s_emptyArgs,
                Kwargs = definition.TryGetProperty("kwargs", out JsonElement k) && k.ValueKind == JsonValueKind.Object ? k.Clone() : s_emptyKwargs,
                Queue = Text(options, "queue"),
                Exchange = Text(options, "exchange"),
                RoutingKey = Text(options, "routing_key"),
                Priority = options.ValueKind == JsonValueKind.Object && options.TryGetProperty("priority", out JsonElement p) && p.TryGetInt32(out int pi) ? pi : null,
                Headers = options.ValueKind == JsonValueKind.Object && options.TryGetProperty("headers", out JsonElement h) && h.ValueKind == JsonValueKind.Object
                    ? h.EnumerateObject().ToDictionary(e => e.Name, e => e.Value.ValueKind == JsonValueKind.String ? e.Value.GetString()! : e.Value.GetRawText(), StringComparer.Ordinal)
                    : null,
                Expires = options.ValueKind == JsonValueKind.Object && options.TryGetProperty("expires", out JsonElement x) && x.ValueKind == JsonValueKind.Number ? TimeSpan.FromSeconds(x.GetDouble()) : null,
                TimeZone = zone,
                CatchUp = Text(definition, "catch_up") switch
                {
                    null or "skip" => BeatCatchUp.Skip,
                    "run_once" => BeatCatchUp.RunOnce,
                    "run_all" => BeatCatchUp.RunAll,
                    string other => throw new FormatException($"catch_up is 'skip', 'run_once' or 'run_all', not '{other}'"),
                },
                Enabled = !definition.TryGetProperty("enabled", out JsonElement en) || en.ValueKind != JsonValueKind.False,
            };
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException or ArgumentException or OverflowException)
        {
            throw new FormatException($"Beat entry '{name}': {ex.Message}", ex);
        }
    }

    /// <summary>The entry's definition in the shape <see cref="FromJson"/> reads (without its run state).</summary>
    public string DefinitionJson()
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("task", Task);
            w.WritePropertyName("schedule");
            Schedule.WriteTo(w);
            w.WritePropertyName("args");
            Args.WriteTo(w);
            w.WritePropertyName("kwargs");
            Kwargs.WriteTo(w);
            w.WriteStartObject("options");
            WriteIf(w, "queue", Queue);
            WriteIf(w, "exchange", Exchange);
            WriteIf(w, "routing_key", RoutingKey);
            if (Priority is { } priority)
            {
                w.WriteNumber("priority", priority);
            }

            if (Headers is { } headers)
            {
                w.WriteStartObject("headers");
                foreach (KeyValuePair<string, string> kv in headers)
                {
                    w.WriteString(kv.Key, kv.Value);
                }

                w.WriteEndObject();
            }

            if (Expires is { } expires)
            {
                w.WriteNumber("expires", expires.TotalSeconds);
            }

            w.WriteEndObject();
            WriteIf(w, "timezone", TimeZone);
            w.WriteString("catch_up", CatchUp switch { BeatCatchUp.RunOnce => "run_once", BeatCatchUp.RunAll => "run_all", _ => "skip" });
            w.WriteBoolean("enabled", Enabled);
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteIf(Utf8JsonWriter w, string name, string? value)
    {
        if (value is not null)
        {
            w.WriteString(name, value);
        }
    }

    private static string? Text(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}

/// <summary>IANA time zones by name, with a clear error for an unknown one.</summary>
public static class BeatZones
{
    /// <summary>The zone named <paramref name="name"/> (IANA, e.g. <c>Europe/Paris</c>; <c>UTC</c>).</summary>
    /// <exception cref="FormatException">No such zone.</exception>
    public static TimeZoneInfo Find(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(name);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"unknown time zone '{name}'"), ex);
        }
    }
}
