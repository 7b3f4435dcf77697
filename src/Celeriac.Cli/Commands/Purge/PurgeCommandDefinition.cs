using System.CommandLine;

namespace Celeriac.Cli.Commands.Purge;

/// <summary><c>celeriac purge</c>: its options.</summary>
internal sealed class PurgeCommandDefinition : Command
{
    public PurgeCommandDefinition(CliContext context) : base("purge", "Erase all waiting messages from queues. There is no undo.")
    {
        Options.Add(QueuesOption);
        Options.Add(ForceOption);
        SetAction((parse, ct) => PurgeCommand.RunAsync(context, this, parse, ct));
    }

    public Option<string[]> QueuesOption { get; } = CommonOptions.Queues("Queues to purge, comma-separated and/or repeated (default: the worker's queues, else 'celery').");

    public Option<bool> ForceOption { get; } = new("--force", "-f") { Description = "Don't ask for confirmation." };
}
