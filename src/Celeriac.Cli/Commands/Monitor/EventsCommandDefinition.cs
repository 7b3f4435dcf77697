using System.CommandLine;

namespace Celeriac.Cli.Commands.Monitor;

/// <summary><c>celeriac events</c>: its options.</summary>
internal sealed class EventsCommandDefinition : Command
{
    public EventsCommandDefinition(CliContext context) : base("events",
        "Watch the cluster's events: a live view of the workers and the latest tasks (keys: up/down select, r revoke, t terminate, i or Enter result, q quit), or with --dump one line per event. Ctrl+C or SIGTERM ends it.")
    {
        FrequencyOption.CustomParser = CommonOptions.ParseSeconds;
        Options.Add(DumpOption);
        Options.Add(FrequencyOption);
        SetAction((parse, ct) => EventsCommand.RunAsync(context, this, parse, ct));
    }

    public Option<bool> DumpOption { get; } = new("--dump") { Description = "Print every event as one line as it comes (like 'celery events --dump'), flushed per line." };

    public Option<double?> FrequencyOption { get; } = new("--freq", "-F")
    {
        Description = "Seconds between redraws of the live view (default 1.0).",
        HelpName = "S",
    };
}
