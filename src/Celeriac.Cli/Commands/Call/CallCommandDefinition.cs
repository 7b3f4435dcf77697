using System.CommandLine;

namespace Celeriac.Cli.Commands.Call;

/// <summary><c>celeriac call</c>: its arguments and options.</summary>
internal sealed class CallCommandDefinition : Command
{
    public CallCommandDefinition(CliContext context) : base("call", "Send a task by name (it may run in any language) and print its id.")
    {
        CountdownOption.CustomParser = CommonOptions.ParseSeconds;
        PriorityOption.CustomParser = CommonOptions.ParseInt;
        Arguments.Add(NameArgument);
        Options.Add(ArgsOption);
        Options.Add(KwargsOption);
        Options.Add(CountdownOption);
        Options.Add(EtaOption);
        Options.Add(ExpiresOption);
        Options.Add(QueueOption);
        Options.Add(PriorityOption);
        SetAction((parse, ct) => CallCommand.RunAsync(context, this, parse, ct));
    }

    public Argument<string> NameArgument { get; } = new("NAME") { Description = "The task name, e.g. tasks.add." };

    public Option<string?> ArgsOption { get; } = new("--args", "-a")
    {
        Description = "Positional arguments as a JSON array, e.g. '[2, 3]'.",
        HelpName = "JSON",
    };

    public Option<string?> KwargsOption { get; } = new("--kwargs", "-k")
    {
        Description = "Keyword arguments as a JSON object, e.g. '{\"x\": 2}'.",
        HelpName = "JSON",
    };

    public Option<double?> CountdownOption { get; } = new("--countdown")
    {
        Description = "Run no sooner than this many seconds from now.",
        HelpName = "S",
    };

    public Option<string?> EtaOption { get; } = new("--eta")
    {
        Description = "Run no sooner than this ISO 8601 time (UTC when it has no offset).",
        HelpName = "ISO",
    };

    public Option<string?> ExpiresOption { get; } = new("--expires")
    {
        Description = "Revoke if not started within this many seconds, or after this ISO 8601 time.",
        HelpName = "S|ISO",
    };

    public Option<string?> QueueOption { get; } = new("--queue")
    {
        Description = "The queue to send to (default: the task's route, else the default queue).",
        HelpName = "Q",
    };

    public Option<int?> PriorityOption { get; } = new("--priority")
    {
        Description = "Message priority (0-9 on Redis and SQLite).",
        HelpName = "N",
    };
}
