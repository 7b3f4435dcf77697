using System.CommandLine;

namespace Celeriac.Cli.Commands.Beat;

/// <summary><c>celeriac beat</c>: runs beat; its subcommands read and edit the schedule store.</summary>
internal sealed class BeatCommandDefinition : Command
{
    public BeatCommandDefinition(CliContext context) : base("beat", "Start the periodic task scheduler (one of any number sends; the others stand by). Subcommands edit its schedule.")
    {
        LogLevelOption.Validators.Add(static r =>
        {
            if (!Logging.CliLogging.TryParseLevel(r.GetValueOrDefault<string>(), out _))
            {
                r.AddError($"Invalid value '{r.GetValueOrDefault<string>()}' for --loglevel: use debug, info, warning, error or critical.");
            }
        });
        MaxIntervalOption.CustomParser = CommonOptions.ParseSeconds;
        Options.Add(ScheduleOption);
        Options.Add(MaxIntervalOption);
        Options.Add(LogLevelOption);
        SetAction((parse, ct) => BeatCommand.RunAsync(context, this, parse, ct));

        var list = new Command("list", "List the entries: schedule, enabled, last and next run.") { JsonOption };
        list.SetAction((parse, ct) => BeatCommand.ListAsync(context, this, parse, ct));
        Subcommands.Add(list);

        var add = new Command("add", "Add an entry to the store, or change the one of that name.") { NameArgument, TaskOption, EverySpecOption, ArgsOption, KwargsOption, QueueOption, TimezoneOption, CatchUpOption };
        add.SetAction((parse, ct) => BeatCommand.AddAsync(context, this, parse, ct));
        Subcommands.Add(add);

        foreach ((string verb, string help) in (ReadOnlySpan<(string, string)>)[("remove", "Remove an entry from the store."), ("enable", "Enable an entry."), ("disable", "Disable an entry (it stays in the store).")])
        {
            var command = new Command(verb, help) { NameArgument };
            command.SetAction((parse, ct) => BeatCommand.ChangeAsync(context, this, verb, parse, ct));
            Subcommands.Add(command);
        }
    }

    public Option<string?> ScheduleOption { get; } = new("--schedule", "-s")
    {
        Description = "The schedule store: sqlite:///path, redis://host:port/db or memory:// (default: next to a SQLite broker, the Redis broker, else sqlite:///celeriac-beat.db).",
        HelpName = "STORE_URL",
        Recursive = true,
    };

    public Option<double?> MaxIntervalOption { get; } = new("--max-interval")
    {
        Description = "Most seconds between looks at the store: edits take effect within it (default 5).",
        HelpName = "SECONDS",
    };

    public Option<string> LogLevelOption { get; } = new("--loglevel", "-l")
    {
        Description = "Logging level: debug, info, warning, error, critical.",
        HelpName = "LEVEL",
        DefaultValueFactory = static _ => "info",
    };

    public Option<bool> JsonOption { get; } = new("--json", "-j") { Description = "Print JSON." };

    public Argument<string> NameArgument { get; } = new("name") { Description = "The entry's name." };

    public Option<string> TaskOption { get; } = new("--task", "-t") { Description = "The task to send.", Required = true };

    public Option<string> EverySpecOption { get; } = new("--schedule-spec", "--every")
    {
        Description = "When: a number of seconds, or a five-field crontab in quotes ('0 3 * * mon-fri').",
        Required = true,
        HelpName = "SCHEDULE",
    };

    public Option<string?> ArgsOption { get; } = new("--args", "-a") { Description = "Positional arguments as a JSON array ('[1, 2]')." };

    public Option<string?> KwargsOption { get; } = new("--kwargs", "-k") { Description = "Keyword arguments as a JSON object ('{\"x\": 1}')." };

    public Option<string?> QueueOption { get; } = new("--queue", "-Q") { Description = "The queue to send to." };

    public Option<string?> TimezoneOption { get; } = new("--timezone") { Description = "IANA time zone of a crontab (default: the app's Timezone)." };

    public Option<string?> CatchUpOption { get; } = new("--catch-up") { Description = "Runs missed while no beat ran: skip (default), run_once or run_all." };
}
