using System.Globalization;
using System.Numerics;
using System.Text;

namespace Celeriac.Beat;

/// <summary>
/// One field of Celery's crontab and its grammar (<c>celery.schedules.crontab_parser</c>): <c>*</c>, <c>n</c>, <c>a-b</c>,
/// <c>*/n</c>, <c>a-b/n</c> and comma lists of them, with ranges that wrap past the field's end (<c>22-2</c>) and the
/// step taken over the wrapped list as Celery slices it. Day names are read in day_of_week and month names in
/// month_of_year by their first three letters, as Celery's <c>weekday()</c> reads them (<c>sunday</c>, <c>Sun</c>).
/// </summary>
internal sealed class CrontabField
{
    private static readonly string[] s_dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    private static readonly string[] s_monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

    internal static readonly CrontabField Minute = new("minute", 0, 59, null, 0);
    internal static readonly CrontabField Hour = new("hour", 0, 23, null, 0);
    internal static readonly CrontabField DayOfWeek = new("day_of_week", 0, 6, s_dayNames, 0);
    internal static readonly CrontabField DayOfMonth = new("day_of_month", 1, 31, null, 0);
    internal static readonly CrontabField MonthOfYear = new("month_of_year", 1, 12, s_monthNames, 1);

    private readonly string[]? _names;
    private readonly int _firstNameValue;

    private CrontabField(string name, int min, int max, string[]? names, int firstNameValue)
    {
        Name = name;
        Min = min;
        Max = max;
        _names = names;
        _firstNameValue = firstNameValue;
    }

    /// <summary>The field's name as Celery's keyword argument spells it.</summary>
    internal string Name { get; }

    internal int Min { get; }

    internal int Max { get; }

    /// <summary>Every value of the field, one bit each.</summary>
    internal ulong All => ((1UL << (Max + 1)) - 1) & ~((1UL << Min) - 1);

    /// <summary>
    /// The values <paramref name="text"/> stands for, one bit each; <paramref name="interval"/> tells whether it was
    /// written with <c>*</c>, a range or a step, which Cronos takes as the sign of an interval entry when the clock falls back.
    /// </summary>
    /// <exception cref="FormatException">Not Celery's grammar, or a value out of the field's range.</exception>
    internal ulong Parse(string text, out bool interval)
    {
        ArgumentNullException.ThrowIfNull(text);
        interval = false;
        if (text.Trim().Length == 0)
        {
            throw Error(text, "it is empty");
        }

        ulong bits = 0;
        foreach (string raw in text.Split(','))
        {
            string part = raw.Trim();
            if (part.Length == 0)
            {
                throw Error(text, "a list has an empty part");
            }

            bits |= ParsePart(text, part, ref interval);
        }

        return bits;
    }

    /// <summary>
    /// The values as a Cronos field: <c>*</c> for all, runs of consecutive values as ranges. When the entry is an interval
    /// one, at least one range is written (<c>5-5</c> if need be) so that Cronos keeps running it through a repeated hour.
    /// </summary>
    internal string ToCronos(ulong bits, bool interval)
    {
        // Only the minute and hour lists stay unranged when Celery's text had none: ranges there would make an entry that
        // runs once a day run twice in a repeated hour.
        bool compress = interval || (this != Minute && this != Hour);
        if (bits == All && compress)
        {
            return "*";
        }

        var sb = new StringBuilder();
        bool wroteRange = false;
        int v = Min;
        while (v <= Max)
        {
            if ((bits & (1UL << v)) == 0)
            {
                v++;
                continue;
            }

            int end = v;
            while (compress && end + 1 <= Max && (bits & (1UL << (end + 1))) != 0)
            {
                end++;
            }

            if (sb.Length > 0)
            {
                sb.Append(',');
            }

            sb.Append(v.ToString(CultureInfo.InvariantCulture));
            if (end > v || (interval && !wroteRange))
            {
                sb.Append('-').Append(end.ToString(CultureInfo.InvariantCulture));
                wroteRange = true;
            }

            v = end + 1;
        }

        return sb.ToString();
    }

    /// <summary>The values in ascending order.</summary>
    internal static int[] Values(ulong bits)
    {
        var values = new int[BitOperations.PopCount(bits)];
        int i = 0;
        for (int v = 0; v < 64; v++)
        {
            if ((bits & (1UL << v)) != 0)
            {
                values[i++] = v;
            }
        }

        return values;
    }

    private ulong ParsePart(string text, string part, ref bool interval)
    {
        string[] slash = part.Split('/');
        if (slash.Length > 2)
        {
            throw Error(text, $"'{part}' has more than one '/'");
        }

        int step = 1;
        if (slash.Length == 2)
        {
            interval = true;
            step = Step(text, slash[1].Trim());
        }

        string span = slash[0].Trim();
        List<int> values;
        if (span == "*")
        {
            interval = true;
            values = Range(Min, Max);
        }
        else
        {
            string[] dash = span.Split('-');
            if (dash.Length > 2)
            {
                throw Error(text, $"'{part}' is not a value or a range a-b (negative numbers are not supported)");
            }

            if (dash.Length == 2)
            {
                interval = true;
                int from = Value(text, dash[0].Trim());
                int to = Value(text, dash[1].Trim());

                // Celery's crontab_parser wraps a reversed range past the field's end: 22-2 is 22,23,0,1,2.
                values = to < from ? [.. Range(from, Max), .. Range(Min, to)] : Range(from, to);
            }
            else if (slash.Length == 2)
            {
                // Celery reads 'n/m' as no pattern at all (a step needs '*' or a range), unlike Vixie cron.
                throw Error(text, $"'{part}': a step needs '*' or a range before it (*/n or a-b/n)");
            }
            else
            {
                values = [Value(text, span)];
            }
        }

        ulong bits = 0;
        for (int i = 0; i < values.Count; i += step)
        {
            bits |= 1UL << values[i];
        }

        return bits;
    }

    private int Step(string text, string token)
    {
        if (token.Length == 0)
        {
            throw Error(text, "a step after '/' is empty");
        }

        if (!IsDigits(token) || !int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out int step))
        {
            throw Error(text, $"the step '{token}' is not a whole number");
        }

        return step > 0 ? step : throw Error(text, "a step must be at least 1, not 0");
    }

    private int Value(string text, string token)
    {
        if (token.Length == 0)
        {
            throw Error(text, "a range needs a value on both sides of '-' (negative numbers are not supported)");
        }

        int value;
        if (IsDigits(token))
        {
            if (!int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out value))
            {
                throw Error(text, $"{token} is more than {Max}");
            }
        }
        else
        {
            value = Named(text, token);
        }

        if (value > Max)
        {
            throw Error(text, $"{value} is more than {Max} ({Name} is {Min}-{Max})");
        }

        if (value < Min)
        {
            throw Error(text, $"{value} is less than {Min} ({Name} is {Min}-{Max})");
        }

        return value;
    }

    private int Named(string text, string token)
    {
        bool letters = token.All(char.IsAsciiLetter);
        if (_names is null || !letters || token.Length < 3)
        {
            string known = this == DayOfWeek ? " or a day name (sun, mon, ...)" : this == MonthOfYear ? " or a month name (jan, feb, ...)" : string.Empty;
            throw Error(text, $"'{token}' is not a number{known}");
        }

        // As Celery's weekday(): the first three letters name the day, so 'sunday' and 'Sun' are both 0.
        int index = Array.IndexOf(_names, token[..3].ToLowerInvariant());
        return index >= 0
            ? index + _firstNameValue
            : throw Error(text, $"'{token}' is not a {(this == DayOfWeek ? "day" : "month")} name ({string.Join(", ", _names)})");
    }

    private static List<int> Range(int from, int to)
    {
        var list = new List<int>(to - from + 1);
        for (int v = from; v <= to; v++)
        {
            list.Add(v);
        }

        return list;
    }

    private static bool IsDigits(string token) => token.Length > 0 && token.All(char.IsAsciiDigit);

    private FormatException Error(string text, string why) => new($"crontab {Name} '{text}' is invalid: {why}");
}
