using System.CommandLine;

namespace Celeriac.Cli.Commands.Migrate;

/// <summary><c>celeriac migrate</c>: its options.</summary>
internal sealed class MigrateCommandDefinition : Command
{
    public MigrateCommandDefinition(CliContext context)
        : base("migrate", "Create the tables of the broker and result backend (e.g. postgresql://) now, instead of on first use.")
    {
        Options.Add(PrintSqlOption);
        SetAction((parse, ct) => MigrateCommand.RunAsync(context, this, parse, ct));
    }

    public Option<bool> PrintSqlOption { get; } = new("--print-sql") { Description = "Print the script instead of running it." };
}
