using System.Globalization;
using System.Text.Json;
using Cronos;

namespace Celeriac.Beat;

/// <summary>
/// Celery's <c>crontab</c>: runs at the minutes, hours, days of the week, days of the month and months of the year its
/// five fields name, in the entry's time zone. As in Celery (and unlike Vixie cron) a day must match the month, the day
/// of the month <em>and</em> the day of the week. Day of week is 0-6 with Sunday 0.
/// </summary>
/// <remarks>
/// Each field is read with Celery's grammar and handed to Cronos as the list of values it stands for; Cronos also
/// requires both day fields to match, and it carries daylight saving: a time the clock skips runs at the first valid
/// time after the gap, and a time the clock repeats runs once, except that entries written with <c>*</c>, ranges or steps
/// in the minute or hour keep running through the repeated hour.
/// </remarks>
public sealed class CrontabSchedule : BeatSchedule
{
    private readonly CronExpression _expression;

    /// <summary>Creates a crontab as Celery's <c>crontab(minute, hour, day_of_week, day_of_month, month_of_year)</c>.</summary>
    /// <param name="minute">Minutes 0-59 (<c>*/15</c>, <c>0,30</c>).</param>
    /// <param name="hour">Hours 0-23 (<c>*/3</c>, <c>8-17</c>).</param>
    /// <param name="dayOfWeek">Days of the week 0-6, Sunday 0, or names (<c>mon-fri</c>, <c>sunday</c>).</param>
    /// <param name="dayOfMonth">Days of the month 1-31 (<c>1-7,15-21</c>).</param>
    /// <param name="monthOfYear">Months 1-12 or names (<c>*/3</c>, <c>jan</c>).</param>
    /// <exception cref="FormatException">A field that is not Celery's grammar, naming the field and why.</exception>
    public CrontabSchedule(string minute = "*", string hour = "*", string dayOfWeek = "*", string dayOfMonth = "*", string monthOfYear = "*")
    {
        Minute = minute ?? "*";
        Hour = hour ?? "*";
        DayOfWeek = dayOfWeek ?? "*";
        DayOfMonth = dayOfMonth ?? "*";
        MonthOfYear = monthOfYear ?? "*";

        ulong minutes = CrontabField.Minute.Parse(Minute, out bool minuteInterval);
        ulong hours = CrontabField.Hour.Parse(Hour, out bool hourInterval);
        ulong daysOfWeek = CrontabField.DayOfWeek.Parse(DayOfWeek, out _);
        ulong daysOfMonth = CrontabField.DayOfMonth.Parse(DayOfMonth, out _);
        ulong months = CrontabField.MonthOfYear.Parse(MonthOfYear, out _);

        // Cronos's own test of an interval entry is syntactic (a '*', range or step in the minute or hour), so a field
        // written so is handed over with ranges, the way Cronos would have seen the same text.
        CronosExpression = string.Join(
            ' ',
            CrontabField.Minute.ToCronos(minutes, minuteInterval),
            CrontabField.Hour.ToCronos(hours, hourInterval),
            CrontabField.DayOfMonth.ToCronos(daysOfMonth, false),
            CrontabField.MonthOfYear.ToCronos(months, false),
            CrontabField.DayOfWeek.ToCronos(daysOfWeek, false));
        _expression = CronExpression.Parse(CronosExpression, CronFormat.Standard);
        Minutes = CrontabField.Values(minutes);
        Hours = CrontabField.Values(hours);
        DaysOfWeek = CrontabField.Values(daysOfWeek);
        DaysOfMonth = CrontabField.Values(daysOfMonth);
        MonthsOfYear = CrontabField.Values(months);
    }

    /// <summary>The minute field as given.</summary>
    public string Minute { get; }

    /// <summary>The hour field as given.</summary>
    public string Hour { get; }

    /// <summary>The day-of-week field as given.</summary>
    public string DayOfWeek { get; }

    /// <summary>The day-of-month field as given.</summary>
    public string DayOfMonth { get; }

    /// <summary>The month-of-year field as given.</summary>
    public string MonthOfYear { get; }

    /// <summary>The minutes it runs at, ascending.</summary>
    public IReadOnlyList<int> Minutes { get; }

    /// <summary>The hours it runs at, ascending.</summary>
    public IReadOnlyList<int> Hours { get; }

    /// <summary>The days of the week it runs on, ascending, Sunday 0.</summary>
    public IReadOnlyList<int> DaysOfWeek { get; }

    /// <summary>The days of the month it runs on, ascending.</summary>
    public IReadOnlyList<int> DaysOfMonth { get; }

    /// <summary>The months it runs in, ascending.</summary>
    public IReadOnlyList<int> MonthsOfYear { get; }

    /// <summary>The same schedule as the Cronos expression it is reckoned with.</summary>
    internal string CronosExpression { get; }

    /// <inheritdoc />
    public override string Kind => "crontab";

    /// <summary>
    /// Reads a five-field crontab string in Celery's <c>crontab.from_string</c> order:
    /// <c>minute hour day_of_month month_of_year day_of_week</c>.
    /// </summary>
    /// <exception cref="FormatException">Not five fields, or a field that is not Celery's grammar.</exception>
    public static CrontabSchedule FromString(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] fields = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return fields.Length == 5
            ? new CrontabSchedule(minute: fields[0], hour: fields[1], dayOfMonth: fields[2], monthOfYear: fields[3], dayOfWeek: fields[4])
            : throw new FormatException(
                $"a crontab string has five fields (minute hour day_of_month month_of_year day_of_week), not {fields.Length}: '{text}'");
    }

    /// <summary>
    /// Reads <c>{"type": "crontab", "minute": "*/15", "hour": "*", "day_of_week": "*", "day_of_month": "*",
    /// "month_of_year": "*"}</c>: each field as Celery's keyword argument, a string, a whole number or a list of whole
    /// numbers; a missing or null field is <c>*</c>.
    /// </summary>
    /// <exception cref="FormatException">A field of another kind, or not Celery's grammar.</exception>
    public static CrontabSchedule Read(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"a crontab schedule is an object, not {value.GetRawText()}");
        }

        return new CrontabSchedule(
            minute: Field(value, "minute"),
            hour: Field(value, "hour"),
            dayOfWeek: Field(value, "day_of_week"),
            dayOfMonth: Field(value, "day_of_month"),
            monthOfYear: Field(value, "month_of_year"));
    }

    /// <inheritdoc />
    public override DateTimeOffset? NextAfter(DateTimeOffset after, TimeZoneInfo zone)
    {
        ArgumentNullException.ThrowIfNull(zone);
        return _expression.GetNextOccurrence(after, zone, inclusive: false);
    }

    /// <inheritdoc />
    public override void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteString("type", Kind);
        writer.WriteString("minute", Minute);
        writer.WriteString("hour", Hour);
        writer.WriteString("day_of_week", DayOfWeek);
        writer.WriteString("day_of_month", DayOfMonth);
        writer.WriteString("month_of_year", MonthOfYear);
        writer.WriteEndObject();
    }

    /// <summary>Celery's repr: <c>&lt;crontab: 0 3 * * * (m/h/dM/MY/d)&gt;</c>.</summary>
    public override string ToString() => $"<crontab: {Minute} {Hour} {DayOfMonth} {MonthOfYear} {DayOfWeek} (m/h/dM/MY/d)>";

    private static string Field(JsonElement value, string name)
    {
        if (!value.TryGetProperty(name, out JsonElement field))
        {
            return "*";
        }

        switch (field.ValueKind)
        {
            case JsonValueKind.Null:
                return "*";
            case JsonValueKind.String:
                return field.GetString()!;
            case JsonValueKind.Number when field.TryGetInt32(out int n):
                return n.ToString(CultureInfo.InvariantCulture);
            case JsonValueKind.Array:
                var parts = new List<string>();
                foreach (JsonElement item in field.EnumerateArray())
                {
                    parts.Add(item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out int v)
                        ? v.ToString(CultureInfo.InvariantCulture)
                        : throw new FormatException($"crontab {name} list holds whole numbers, not {item.GetRawText()}"));
                }

                return parts.Count > 0 ? string.Join(',', parts) : throw new FormatException($"crontab {name} list is empty");
            default:
                throw new FormatException($"crontab {name} is a string, a whole number or a list of them, not {field.GetRawText()}");
        }
    }
}
