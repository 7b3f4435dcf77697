using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Celeriac.Cli.Commands.Beat;
using Celeriac.Cli.Commands.Call;
using Celeriac.Cli.Commands.Dashboard;
using Celeriac.Cli.Commands.Migrate;
using Celeriac.Cli.Commands.Monitor;
using Celeriac.Cli.Commands.Purge;
using Celeriac.Cli.Commands.Remote;
using Celeriac.Cli.Commands.Report;
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

        // inspect and control list their commands after their help, as Celery's do.
        if (root.Options.OfType<HelpOption>().FirstOrDefault() is { Action: SynchronousCommandLineAction standard } help)
        {
            help.Action = new HelpWithSuffixAction(standard);
        }

        root.Options.Add(context.Broker);
        root.Options.Add(context.ResultBackend);
        root.Subcommands.Add(new WorkerCommandDefinition(context));
        root.Subcommands.Add(new CallCommandDefinition(context));
        root.Subcommands.Add(new ResultCommandDefinition(context));
        root.Subcommands.Add(new PurgeCommandDefinition(context));
        root.Subcommands.Add(RemoteCommandDefinition.Inspect(context));
        root.Subcommands.Add(RemoteCommandDefinition.Control(context));
        root.Subcommands.Add(new StatusCommandDefinition(context));
        root.Subcommands.Add(new EventsCommandDefinition(context));
        root.Subcommands.Add(new ReportCommandDefinition(context));
        root.Subcommands.Add(new BeatCommandDefinition(context));
        root.Subcommands.Add(new MigrateCommandDefinition(context));
        root.Subcommands.Add(new DashboardCommandDefinition(context));
        return root;
    }

    private sealed class HelpWithSuffixAction(SynchronousCommandLineAction standard) : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            int code = standard.Invoke(parseResult);
            if (parseResult.CommandResult.Command is RemoteCommandDefinition remote)
            {
                parseResult.InvocationConfiguration.Output.WriteLine(remote.HelpSuffix);
            }

            return code;
        }
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
