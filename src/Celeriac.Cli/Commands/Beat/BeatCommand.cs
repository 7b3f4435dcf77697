using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Celeriac.Beat;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Celeriac.Cli.Commands.Beat;

/// <summary><c>celeriac beat</c> and its store subcommands.</summary>
internal static class BeatCommand
{
    public static async Task<int> RunAsync(CliContext context, BeatCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        LogLevel level = Logging.CliLogging.TryParseLevel(parse.GetValue(definition.LogLevelOption), out LogLevel l) ? l : LogLevel.Information;
        CliSession session = context.Open(parse, o => Configure(o, definition, parse), level);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        CeleriacApp app = session.App;
        _ = app.Transport;
        var beat = new CeleriacBeat(app);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var signals = new StopSignals(stop);
        await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"celeriac beat v{CeleriacCli.Version.Split('+')[0]} is starting.{Environment.NewLine}__    -    ... __   -        _{Environment.NewLine}" +
            $"LocalTime -> {app.Options.TimeProvider.GetLocalNow():yyyy-MM-dd HH:mm:ss}{Environment.NewLine}" +
            $"Configuration ->{Environment.NewLine}    . broker -> {UrlText.Mask(app.Options.BrokerUrl)}{Environment.NewLine}" +
            $"    . scheduler -> {UrlText.Mask(app.Options.BeatScheduleUrl ?? BeatStores.DefaultUrl(app))}{Environment.NewLine}" +
            $"    . maxinterval -> {app.Options.BeatMaxInterval.TotalSeconds} seconds ({app.Options.BeatMaxInterval.TotalSeconds}s){Environment.NewLine}").AsMemory(), CancellationToken.None).ConfigureAwait(false);
        await context.Out.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        await beat.RunAsync(stop.Token).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    public static async Task<int> ListAsync(CliContext context, BeatCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        CliSession session = context.Open(parse, o => Configure(o, definition, parse));
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        CeleriacApp app = session.App;
        IBeatStore store = BeatStores.Open(app);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeStore = store.ConfigureAwait(false);
        IReadOnlyList<BeatEntry> entries = await store.LoadAsync(ct).ConfigureAwait(false);
        DateTimeOffset now = app.Options.TimeProvider.GetUtcNow();
        var rows = entries.Select(e => (Entry: e, Next: NextRun(app, e, now))).ToList();
        if (parse.GetValue(definition.JsonOption))
        {
            var json = rows.Select(r => new Dictionary<string, object?>
            {
                ["name"] = r.Entry.Name,
                ["task"] = r.Entry.Task,
                ["schedule"] = JsonDocument.Parse(r.Entry.Schedule.ToJson()).RootElement,
                ["enabled"] = r.Entry.Enabled,
                ["last_run_at"] = r.Entry.LastRunAt is { } last ? Protocol.CeleryJson.FormatIso(last) : null,
                ["next_run_at"] = r.Next.At is { } next ? Protocol.CeleryJson.FormatIso(next) : null,
                ["total_run_count"] = r.Entry.TotalRunCount,
                ["error"] = r.Next.Error,
            }).ToList();
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(json, Protocol.CeleryJson.Options).AsMemory(), ct).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        if (rows.Count == 0)
        {
            await context.Out.WriteLineAsync("No entries.".AsMemory(), ct).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        var table = new Table().AddColumns("Name", "Task", "Schedule", "Enabled", "Last run", "Next run", "Runs");
        foreach ((BeatEntry e, (DateTimeOffset? at, string? error)) in rows)
        {
            table.AddRow(
                Markup.Escape(e.Name),
                Markup.Escape(e.Task),
                Markup.Escape(e.Schedule.ToString() ?? ""),
                e.Enabled ? "yes" : "[grey]no[/]",
                e.LastRunAt is { } last ? last.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "-",
                error is not null ? "[red]" + Markup.Escape(error) + "[/]" : at is { } next ? next.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "never",
                e.TotalRunCount.ToString(CultureInfo.InvariantCulture));
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(context.Out), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        console.Profile.Width = 160;
        console.Write(table);
        return ExitCodes.Ok;
    }

    public static async Task<int> AddAsync(CliContext context, BeatCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        string name = parse.GetValue(definition.NameArgument)!;
        var definitionJson = new Dictionary<string, object?>
        {
            ["task"] = parse.GetValue(definition.TaskOption),
            ["schedule"] = parse.GetValue(definition.EverySpecOption),
            ["args"] = Json(parse.GetValue(definition.ArgsOption), "--args", JsonValueKind.Array),
            ["kwargs"] = Json(parse.GetValue(definition.KwargsOption), "--kwargs", JsonValueKind.Object),
            ["options"] = parse.GetValue(definition.QueueOption) is { } queue ? new Dictionary<string, object?> { ["queue"] = queue } : null,
            ["timezone"] = parse.GetValue(definition.TimezoneOption),
            ["catch_up"] = parse.GetValue(definition.CatchUpOption),
        };
        BeatEntry entry;
        try
        {
            entry = BeatEntry.FromJson(name, JsonSerializer.SerializeToElement(definitionJson.Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value), Protocol.CeleryJson.Options));
        }
        catch (FormatException ex)
        {
            throw new CliUsageException(ex.Message);
        }

        CliSession session = context.Open(parse, o => Configure(o, definition, parse));
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        IBeatStore store = BeatStores.Open(session.App);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeStore = store.ConfigureAwait(false);
        await store.SaveAsync(entry with { LastRunAt = session.App.Options.TimeProvider.GetUtcNow() }, ct).ConfigureAwait(false);
        await context.Out.WriteLineAsync($"Saved {name}: {entry.Task} {entry.Schedule}".AsMemory(), ct).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    public static async Task<int> ChangeAsync(CliContext context, BeatCommandDefinition definition, string verb, ParseResult parse, CancellationToken ct)
    {
        string name = parse.GetValue(definition.NameArgument)!;
        CliSession session = context.Open(parse, o => Configure(o, definition, parse));
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        IBeatStore store = BeatStores.Open(session.App);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeStore = store.ConfigureAwait(false);
        bool found = verb switch
        {
            "remove" => await store.RemoveAsync(name, ct).ConfigureAwait(false),
            "enable" => await store.SetEnabledAsync(name, true, ct).ConfigureAwait(false),
            _ => await store.SetEnabledAsync(name, false, ct).ConfigureAwait(false),
        };
        if (!found)
        {
            context.WriteError($"Error: no beat entry named '{name}'.");
            return ExitCodes.Failure;
        }

        string done = verb switch { "remove" => "Removed", "enable" => "Enabled", _ => "Disabled" };
        await context.Out.WriteLineAsync($"{done} {name}".AsMemory(), ct).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    private static void Configure(CeleriacOptions o, BeatCommandDefinition definition, ParseResult parse)
    {
        if (parse.GetValue(definition.ScheduleOption) is { } schedule)
        {
            o.BeatScheduleUrl = schedule;
        }

        if (parse.GetValue(definition.MaxIntervalOption) is { } maxInterval)
        {
            o.BeatMaxInterval = TimeSpan.FromSeconds(maxInterval);
        }
    }

    private static (DateTimeOffset? At, string? Error) NextRun(CeleriacApp app, BeatEntry entry, DateTimeOffset now)
    {
        try
        {
            TimeZoneInfo zone = entry.ZoneOr(app.Options.Timezone);
            return (entry.Schedule.NextAfter(entry.LastRunAt ?? now, zone), null);
        }
        catch (FormatException ex)
        {
            return (null, ex.Message);
        }
    }

    private static JsonElement? Json(string? text, string option, JsonValueKind kind)
    {
        if (text is null)
        {
            return null;
        }

        try
        {
            using JsonDocument doc = JsonDocument.Parse(text);
            return doc.RootElement.ValueKind == kind ? doc.RootElement.Clone() : throw new CliUsageException($"{option} must be a JSON {(kind == JsonValueKind.Array ? "array" : "object")}, not {text}");
        }
        catch (JsonException ex)
        {
            throw new CliUsageException($"{option} is not JSON: {ex.Message}");
        }
    }
}
