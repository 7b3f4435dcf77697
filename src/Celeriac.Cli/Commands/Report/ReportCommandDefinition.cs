using System.CommandLine;

namespace Celeriac.Cli.Commands.Report;

/// <summary><c>celeriac report</c>.</summary>
internal sealed class ReportCommandDefinition : Command
{
    public ReportCommandDefinition(CliContext context) : base("report", "Print what a bug report needs: versions, platform, broker and backend (passwords masked), settings.")
    {
        SetAction((parse, ct) => ReportCommand.RunAsync(context, parse, ct));
    }
}
