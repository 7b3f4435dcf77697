using System.Text.Json;

namespace Celeriac.Beat;

/// <summary>Celery's <c>crontab</c>. PLACEHOLDER on branch beat-15 until the schedules land: replaced, never merged as is.</summary>
public sealed class CrontabSchedule : BeatSchedule
{
    /// <inheritdoc />
    public override string Kind => "crontab";

    /// <summary>Reads a five-field crontab string.</summary>
    public static CrontabSchedule FromString(string text) => throw new NotImplementedException(text);

    /// <summary>Reads <c>{"type": "crontab", ...}</c>.</summary>
    public static CrontabSchedule Read(JsonElement value) => throw new NotImplementedException(value.GetRawText());

    /// <inheritdoc />
    public override DateTimeOffset? NextAfter(DateTimeOffset after, TimeZoneInfo zone) => throw new NotImplementedException();

    /// <inheritdoc />
    public override void WriteTo(Utf8JsonWriter writer) => throw new NotImplementedException();
}

/// <summary>Celery's <c>solar</c>. PLACEHOLDER on branch beat-15 until the schedules land: replaced, never merged as is.</summary>
public sealed class SolarSchedule : BeatSchedule
{
    /// <inheritdoc />
    public override string Kind => "solar";

    /// <summary>Reads <c>{"type": "solar", ...}</c>.</summary>
    public static SolarSchedule Read(JsonElement value) => throw new NotImplementedException(value.GetRawText());

    /// <inheritdoc />
    public override DateTimeOffset? NextAfter(DateTimeOffset after, TimeZoneInfo zone) => throw new NotImplementedException();

    /// <inheritdoc />
    public override void WriteTo(Utf8JsonWriter writer) => throw new NotImplementedException();
}
