using System.CommandLine;
using System.Text;
using Celeriac.Control;

namespace Celeriac.Cli.Commands.Remote;

/// <summary>
/// <c>celeriac inspect</c> and <c>celeriac control</c>, as Celery's: a command of their kind, its positional
/// arguments, and the remote-control options.
/// </summary>
internal sealed class RemoteCommandDefinition : Command
{
    private RemoteCommandDefinition(CliContext context, string name, ControlCommandKind kind, string description)
        : base(name, description)
    {
        Kind = kind;
        HelpSuffix = CommandList(kind);
        Arguments.Add(CommandArgument);
        Arguments.Add(WordsArgument);
        Options.Add(Remote.Destination);
        Options.Add(Remote.Timeout);
        Options.Add(Remote.Json);
        SetAction((parse, ct) => RemoteCommand.RunAsync(context, this, parse, ct));
    }

    public ControlCommandKind Kind { get; }

    /// <summary>The commands and their arguments, printed after this verb's own help (not in the root's list of verbs).</summary>
    public string HelpSuffix { get; }

    public Argument<string> CommandArgument { get; } = new("COMMAND") { Description = "The command (see the list below)." };

    public Argument<string[]> WordsArgument { get; } = new("ARGS")
    {
        Description = "The command's arguments, as its signature shows.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public RemoteOptions Remote { get; } = new();

    /// <summary><c>celeriac inspect</c>.</summary>
    public static RemoteCommandDefinition Inspect(CliContext context) =>
        new(context, "inspect", ControlCommandKind.Inspect, "Inspect the workers at runtime: ask them for their state and print their replies.");

    /// <summary><c>celeriac control</c>.</summary>
    public static RemoteCommandDefinition Control(CliContext context) =>
        new(context, "control", ControlCommandKind.Control, "Workers remote control: tell them to change and print their replies.");

    /// <summary>The commands a verb offers (Celery hides <c>hello</c>).</summary>
    public static IEnumerable<ControlCommandInfo> Offered(ControlCommandKind kind) =>
        ControlCommands.All.Where(c => c.Kind == kind && c.Visible);

    private static string CommandList(ControlCommandKind kind)
    {
        var text = new StringBuilder("Commands:");
        List<(string Usage, string Help)> rows = [.. Offered(kind).Select(c => (c.Signature.Length == 0 ? c.Name : c.Name + " " + c.Signature, c.Help))];
        int width = rows.Max(r => r.Usage.Length) + 2;
        foreach ((string usage, string help) in rows)
        {
            text.Append(Environment.NewLine).Append("  ").Append(usage.PadRight(width)).Append(help);
        }

        return text.Append(Environment.NewLine).ToString();
    }
}

/// <summary>Celery's remote-control options: <c>-d</c>, <c>-t</c>, <c>-j</c>.</summary>
internal sealed class RemoteOptions
{
    public RemoteOptions()
    {
        Timeout.CustomParser = CommonOptions.ParseSeconds;
    }

    public Option<string?> Destination { get; } = new("--destination", "-d")
    {
        Description = "Comma-separated node names to send to (default: every worker).",
        HelpName = "w1,w2",
    };

    public Option<double?> Timeout { get; } = new("--timeout", "-t")
    {
        Description = "Seconds to wait for replies (default 1.0).",
        HelpName = "S",
    };

    public Option<bool> Json { get; } = new("--json", "-j") { Description = "Print the replies as JSON." };

    /// <summary>Where the command goes and how long its replies are awaited.</summary>
    public ControlOptions ToControlOptions(ParseResult parse)
    {
        List<string> destination = CommonOptions.SplitQueues([parse.GetValue(Destination) ?? ""]);
        return new ControlOptions
        {
            Destination = destination.Count == 0 ? null : destination,
            Reply = true,
            Timeout = TimeSpan.FromSeconds(parse.GetValue(Timeout) ?? ControlClient.DefaultTimeout.TotalSeconds),
        };
    }
}
