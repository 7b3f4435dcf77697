using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Spectre.Console;

namespace Celeriac.Benchmarks;

/// <summary>A goal a figure is held to: at least or below a value.</summary>
internal sealed record Goal(bool AtLeast, double Limit)
{
    public static Goal Min(double limit) => new(true, limit);

    public static Goal Below(double limit) => new(false, limit);

    public bool IsMet(double value) => AtLeast ? value >= Limit : value < Limit;

    public override string ToString() => (AtLeast ? "≥ " : "< ") + Report.Format(Limit);

    /// <summary>The goal in ASCII, for the JSON lines: <c>&gt;= 10000</c>, <c>&lt; 60</c>.</summary>
    public string ToAscii() => (AtLeast ? ">= " : "< ") + Limit.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One measured figure; <see cref="Error"/> says why there is no value, <see cref="Caveat"/> what limits the value there is.</summary>
internal sealed record Figure(string Transport, string Name, double? Value, string Unit, Goal? Goal, string? Error, string? Note, string? Caveat = null)
{
    public bool? Met => Value is { } v && Goal is { } g ? g.IsMet(v) : null;
}

/// <summary>Collects figures: each is written as one JSON line on stdout as soon as it is measured; the table comes at the end.</summary>
internal sealed class Report
{
    private readonly List<Figure> _figures = [];
    private readonly List<string> _apart = [];

    public IReadOnlyList<Figure> Figures => _figures;

    public void Add(string transport, string name, double value, string unit, Goal? goal = null, string? note = null, string? caveat = null) =>
        Add(new Figure(transport, name, value, unit, goal, null, note, caveat));

    public void Fail(string transport, string name, string unit, string error, Goal? goal = null) =>
        Add(new Figure(transport, name, null, unit, goal, error, null));

    private void Add(Figure figure)
    {
        _figures.Add(figure);
        Console.Out.WriteLine(Json(figure));
        Console.Out.Flush();
        Progress.Say(figure.Error is null
            ? $"{figure.Transport} {figure.Name}: {Format(figure.Value!.Value)} {figure.Unit}{(figure.Caveat is null ? "" : " (" + figure.Caveat + ")")}"
            : $"{figure.Transport} {figure.Name}: FAILED: {figure.Error}");
    }

    private static string Json(Figure f)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("transport", f.Transport);
            w.WriteString("figure", f.Name);
            if (f.Value is { } v)
            {
                w.WriteNumber("value", Math.Round(v, v >= 100 ? 1 : 3));
            }
            else
            {
                w.WriteNull("value");
            }

            w.WriteString("unit", f.Unit);
            if (f.Goal is { } goal)
            {
                w.WriteString("goal", goal.ToAscii());
                if (f.Met is { } met)
                {
                    w.WriteBoolean("met", met);
                }
            }

            if (f.Error is { } error)
            {
                w.WriteString("error", error);
            }

            if (f.Caveat is { } caveat)
            {
                w.WriteString("caveat", caveat);
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static string Format(double value) => value switch
    {
        >= 1 and < 1_000_000 when value == Math.Floor(value) => value.ToString("#,0", CultureInfo.InvariantCulture),
        >= 1000 => value.ToString("#,0", CultureInfo.InvariantCulture),
        >= 100 => value.ToString("0.0", CultureInfo.InvariantCulture),
        >= 1 => value.ToString("0.00", CultureInfo.InvariantCulture),
        _ => value.ToString("0.000", CultureInfo.InvariantCulture),
    };

    private static string MetText(Figure f) => f.Error is not null ? "FAILED" : f.Met switch
    {
        true => "yes",
        false => "NO",
        null => "",
    };

    /// <summary>Leaves <paramref name="transport"/>'s figures (and <c>transport/…</c>) out of the single-transport table: a <see cref="Comparison"/> shows them.</summary>
    public void KeepApart(string transport) => _apart.Add(transport);

    /// <summary>Whether a figure is <paramref name="transport"/>'s, or one of its Celery figures (<c>transport/…</c>).</summary>
    public static bool IsOf(Figure f, string transport) =>
        f.Transport == transport || f.Transport.StartsWith(transport + "/", StringComparison.Ordinal);

    /// <summary>The figures of the single-transport table.</summary>
    private IEnumerable<Figure> TableFigures => _figures.Where(f => !_apart.Any(t => IsOf(f, t)));

    /// <summary>Whether the single-transport table has rows.</summary>
    public bool HasTable => TableFigures.Any();

    /// <summary>The Spectre.Console table, on stderr (so that stdout stays JSON lines).</summary>
    public void WriteTable(string title)
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        console.Profile.Width = Math.Max(console.Profile.Width, 140);
        var table = new Table().Title(title).AddColumns("transport", "figure", "value", "unit", "goal", "met?", "how");
        table.Columns[2].RightAligned();
        foreach (Figure f in TableFigures)
        {
            table.AddRow(
                Markup.Escape(f.Transport),
                Markup.Escape(f.Name),
                f.Value is { } v ? Format(v) : "[red]" + Markup.Escape(f.Error ?? "failed") + "[/]",
                Markup.Escape(f.Unit),
                f.Goal?.ToString() ?? "",
                f.Met == false || f.Error is not null ? "[red]" + MetText(f) + "[/]" : MetText(f),
                Markup.Escape(f.Note ?? ""));
        }

        console.Write(table);
    }

    /// <summary>The same as a markdown table (for the README).</summary>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| transport | figure | value | unit | goal | met? | how |");
        sb.AppendLine("| --- | --- | ---: | --- | --- | --- | --- |");
        foreach (Figure f in TableFigures)
        {
            string value = f.Value is { } v ? Format(v) : "failed: " + f.Error;
            sb.Append(CultureInfo.InvariantCulture, $"| {f.Transport} | {f.Name} | {value} | {f.Unit} | {f.Goal?.ToString() ?? ""} | {MetText(f)} | {f.Note} |").AppendLine();
        }

        return sb.ToString();
    }
}

/// <summary>Progress lines on stderr, with the time since start.</summary>
internal static class Progress
{
    private static readonly long s_start = System.Diagnostics.Stopwatch.GetTimestamp();

    public static void Say(string message)
    {
        double seconds = System.Diagnostics.Stopwatch.GetElapsedTime(s_start).TotalSeconds;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{seconds,7:0.0}s] {message}"));
    }
}
