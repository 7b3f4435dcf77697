using System.Globalization;
using System.Text;
using Spectre.Console;

namespace Celeriac.Benchmarks;

/// <summary>
/// Celeriac against Python Celery on the same server: one row per figure with Celeriac's value, Celery's with each
/// pool, and the ratio Celeriac ÷ Celery (above 1 is faster for rates; below 1 is faster for latencies). The values
/// are the <see cref="Report"/>'s figures, looked up when the table is written.
/// </summary>
internal sealed class Comparison
{
    private readonly Report _report;
    private readonly string _transport;
    private readonly List<Row> _rows = [];

    /// <summary>A comparison of <paramref name="transport"/>'s figures (and <c>transport/…</c>, Celery's), which the report then leaves out of its own table.</summary>
    public Comparison(Report report, string transport, string title)
    {
        _report = report;
        _transport = transport;
        Title = title;
        report.KeepApart(transport);
    }

    /// <summary>The table's title (without the run's core count and --count).</summary>
    public string Title { get; }

    /// <summary>
    /// One row: the figures' (transport, name) keys, a null key for a pool the row does not compare with (an empty
    /// cell); <paramref name="GoalVsPrefork"/> holds the ratio against prefork.
    /// </summary>
    private sealed record Row(string Name, string Unit, (string, string) Celeriac, (string, string)? Prefork, (string, string)? Threads, Goal? GoalVsPrefork, string How);

    public void Add(string name, string unit, (string Transport, string Name) celeriac, (string Transport, string Name)? prefork, (string Transport, string Name)? threads, Goal? goalVsPrefork, string how) =>
        _rows.Add(new Row(name, unit, celeriac, prefork, threads, goalVsPrefork, how));

    /// <summary>Celeriac ÷ Celery for a row's figure and a pool, when both were measured.</summary>
    public double? Ratio(string name, bool prefork)
    {
        Row? row = _rows.Find(r => r.Name == name);
        return row is null ? null : Ratio(Find(row.Celeriac), Find(prefork ? row.Prefork : row.Threads));
    }

    private Figure? Find((string Transport, string Name)? key) =>
        key is { } k ? _report.Figures.LastOrDefault(f => f.Transport == k.Transport && f.Name == k.Name) : null;

    private static double? Ratio(Figure? celeriac, Figure? celery) =>
        celeriac?.Value is { } a && celery?.Value is { } b && b > 0 ? a / b : null;

    private static string Value(Figure? f) => f switch
    {
        null => "not run",
        { Value: { } v, Caveat: null } => Report.Format(v),
        { Value: { } v } => Report.Format(v) + " *",
        _ => "FAILED",
    };

    public static string FormatRatio(double? ratio) => ratio switch
    {
        null => "",
        >= 100 => ratio.Value.ToString("#,0", CultureInfo.InvariantCulture) + "×",
        >= 10 => ratio.Value.ToString("0.0", CultureInfo.InvariantCulture) + "×",
        _ => ratio.Value.ToString("0.00", CultureInfo.InvariantCulture) + "×",
    };

    private static string GoalText(Goal? goal) => goal is null ? "" : (goal.AtLeast ? "≥ " : "< ") + Report.Format(goal.Limit) + "× prefork";

    private string MetText(Row row)
    {
        if (row.GoalVsPrefork is not { } goal)
        {
            return "";
        }

        return Ratio(Find(row.Celeriac), Find(row.Prefork)) is { } r ? (goal.IsMet(r) ? "yes" : "NO") : "FAILED";
    }

    /// <summary>What is said under the table: a line per failed figure and per figure with a caveat (marked * in the table).</summary>
    private IEnumerable<(bool Failed, string Text)> Remarks() =>
        _report.Figures.Where(f => Report.IsOf(f, _transport) && (f.Error ?? f.Caveat) is not null)
            .Select(f => (f.Error is not null, f.Error is { } error ? $"{f.Transport} {f.Name} failed: {error}" : $"* {f.Transport} {f.Name}: {f.Caveat}"));

    private IEnumerable<string[]> Cells()
    {
        foreach (Row row in _rows)
        {
            Figure? celeriac = Find(row.Celeriac), prefork = Find(row.Prefork), threads = Find(row.Threads);
            yield return
            [
                row.Name, row.Unit, Value(celeriac), row.Prefork is null ? "" : Value(prefork), FormatRatio(Ratio(celeriac, prefork)),
                row.Threads is null ? "" : Value(threads), FormatRatio(Ratio(celeriac, threads)), GoalText(row.GoalVsPrefork), MetText(row), row.How,
            ];
        }
    }

    private static readonly string[] s_columns =
        ["figure", "unit", "Celeriac", "Celery prefork -c 2", "Celeriac ÷ prefork", "Celery threads -c 8", "Celeriac ÷ threads", "goal", "met?", "how"];

    /// <summary>The Spectre.Console table, on stderr.</summary>
    public void WriteTable(string title)
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        console.Profile.Width = Math.Max(console.Profile.Width, 180);
        var table = new Table().Title(Markup.Escape(title)).AddColumns(s_columns);
        foreach (int i in (int[])[2, 3, 4, 5, 6])
        {
            table.Columns[i].RightAligned();
        }

        foreach (string[] cells in Cells())
        {
            table.AddRow(cells.Select(c => c is "FAILED" or "NO" ? "[red]" + c + "[/]" : Markup.Escape(c)).ToArray());
        }

        console.Write(table);
        foreach ((bool failed, string text) in Remarks())
        {
            console.MarkupLine(failed ? "[red]" + Markup.Escape(text) + "[/]" : Markup.Escape(text));
        }
    }

    /// <summary>The same as a markdown table (for the README); failures and caveats are listed under it.</summary>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| " + string.Join(" | ", s_columns) + " |");
        sb.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |");
        foreach (string[] cells in Cells())
        {
            sb.AppendLine("| " + string.Join(" | ", cells) + " |");
        }

        List<(bool Failed, string Text)> remarks = [.. Remarks()];
        if (remarks.Count > 0)
        {
            sb.AppendLine();
            foreach ((_, string text) in remarks)
            {
                sb.Append("- ").AppendLine(text.StartsWith("* ", StringComparison.Ordinal) ? "\\" + text : text);
            }
        }

        return sb.ToString();
    }
}
