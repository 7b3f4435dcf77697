using System.CommandLine;

namespace Celeriac.Cli.Commands.Result;

/// <summary><c>celeriac result</c>: its arguments and options.</summary>
internal sealed class ResultCommandDefinition : Command
{
    public ResultCommandDefinition(CliContext context) : base("result",
        "Print a task's result as JSON. Exit codes: 0 SUCCESS (result on stdout); 1 FAILURE or REVOKED ('FAILURE: Type: message' on stderr); 3 not ready (its state on stdout, or a timeout line on stderr with --wait).")
    {
        WaitOption.CustomParser = CommonOptions.ParseSeconds;
        Arguments.Add(IdArgument);
        Options.Add(WaitOption);
        SetAction((parse, ct) => ResultCommand.RunAsync(context, this, parse, ct));
    }

    public Argument<string> IdArgument { get; } = new("ID") { Description = "The task id." };

    public Option<double?> WaitOption { get; } = new("--wait", "-w")
    {
        Description = "Wait up to this many seconds for the result to be ready.",
        HelpName = "S",
    };
}
