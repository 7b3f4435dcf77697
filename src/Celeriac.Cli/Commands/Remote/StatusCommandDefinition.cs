using System.CommandLine;

namespace Celeriac.Cli.Commands.Remote;

/// <summary><c>celeriac status</c>: its options.</summary>
internal sealed class StatusCommandDefinition : Command
{
    public StatusCommandDefinition(CliContext context) : base("status", "Show the workers that are online (they answer a ping).")
    {
        Options.Add(Remote.Destination);
        Options.Add(Remote.Timeout);
        Options.Add(Remote.Json);
        SetAction((parse, ct) => RemoteCommand.StatusAsync(context, this, parse, ct));
    }

    public RemoteOptions Remote { get; } = new();
}
