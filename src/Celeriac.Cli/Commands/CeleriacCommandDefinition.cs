using System.CommandLine;
using System.CommandLine.Invocation;
using Celeriac.Cli.Commands.Beat;
using Celeriac.Cli.Commands.Call;
using Celeriac.Cli.Commands.Purge;
using Celeriac.Cli.Commands.Result;
using Celeriac.Cli.Commands.Worker;

namespace Celeriac.Cli.Commands;

/// <summary>The root command: global options and the verbs.</summary>
internal static class CeleriacCommandDefinition
{
    public static RootCommand Create(CliContext context)
    {
        var root = new RootCommand($"Celeriac: a distributed task queue for .NET that speaks Celery's protocol v2.{Environment.NewLine}{ExitCodes.HelpText}");

        // System.CommandLine's --version prints the entry assembly's version (the host's app); print Celeriac's.
        VersionOption version = root.Options.OfType<VersionOption>().FirstOrDefault() ?? new VersionOption();
        version.Action = new PrintVersionAction();
        if (!root.Options.Contains(version))
        {
            root.Options.Add(version);
        }

        root.Options.Add(context.Broker);
        root.Options.Add(context.ResultBackend);
        root.Subcommands.Add(new WorkerCommandDefinition(context));
        root.Subcommands.Add(new CallCommandDefinition(context));
        root.Subcommands.Add(new ResultCommandDefinition(context));
        root.Subcommands.Add(new PurgeCommandDefinition(context));
        root.Subcommands.Add(new BeatCommandDefinition(context));
        return root;
    }

    private sealed class PrintVersionAction : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine(CeleriacCli.Version);
            return ExitCodes.Ok;
        }
    }
}
