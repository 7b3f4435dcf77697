using System.Globalization;

namespace Celeriac.Control;

/// <summary>Whether a remote-control command reads a worker's state (<c>celery inspect</c>) or changes it (<c>celery control</c>).</summary>
public enum ControlCommandKind
{
    /// <summary>Reads (<c>inspect</c>).</summary>
    Inspect,

    /// <summary>Changes (<c>control</c>).</summary>
    Control,
}

/// <summary>How a command-line word becomes an argument's value (Celery's <c>Panel.meta[...].args</c> types).</summary>
public enum ControlArgumentType
{
    /// <summary>Kept as text.</summary>
    Text,

    /// <summary>An integer.</summary>
    WholeNumber,

    /// <summary>A number.</summary>
    Number,

    /// <summary>A yes/no word (Celery's <c>strtobool</c>).</summary>
    Boolean,
}

/// <summary>A positional argument of a command.</summary>
/// <param name="Name">The keyword it is sent as.</param>
/// <param name="Type">How its word is read.</param>
public sealed record ControlArgument(string Name, ControlArgumentType Type);

/// <summary>One of Celery's remote-control commands, as <c>celery.worker.control.Panel</c> registers it.</summary>
/// <param name="Name">The command.</param>
/// <param name="Kind">Inspect or control.</param>
/// <param name="Help">One line of help.</param>
/// <param name="Signature">The arguments as Celery's help shows them.</param>
/// <param name="Arguments">The positional arguments, in order.</param>
/// <param name="Variadic">The keyword that takes the remaining words as a list, if any.</param>
/// <param name="Alias">Celery's older name, if any.</param>
/// <param name="Visible">Whether the command line offers it (Celery hides <c>hello</c>).</param>
public sealed record ControlCommandInfo(
    string Name,
    ControlCommandKind Kind,
    string Help,
    string Signature = "",
    IReadOnlyList<ControlArgument>? Arguments = null,
    string? Variadic = null,
    string? Alias = null,
    bool Visible = true)
{
    /// <summary>The positional arguments (none when <see langword="null"/> was given).</summary>
    public IReadOnlyList<ControlArgument> Positional => Arguments ?? [];
}

/// <summary>
/// The remote-control commands Celery 5.2's workers answer and Celeriac's workers answer too, with Celery's names,
/// aliases and arguments; and the turning of command-line words into a request's arguments as <c>celery control</c> does.
/// </summary>
public static class ControlCommands
{
    private static readonly ControlCommandInfo[] s_all =
    [
        new("ping", ControlCommandKind.Inspect, "Ping worker(s)."),
        new("active", ControlCommandKind.Inspect, "List of tasks currently being executed.", Alias: "dump_active"),
        new("reserved", ControlCommandKind.Inspect, "List of currently reserved tasks, not including scheduled/active.", Alias: "dump_reserved"),
        new("scheduled", ControlCommandKind.Inspect, "List of currently scheduled ETA/countdown tasks.", Alias: "dump_schedule"),
        new("revoked", ControlCommandKind.Inspect, "List of revoked task-ids.", Alias: "dump_revoked"),
        new("registered", ControlCommandKind.Inspect, "List of registered tasks.", "[attr1 [attr2 [... [attrN]]]]", Variadic: "taskinfoitems", Alias: "dump_tasks"),
        new("stats", ControlCommandKind.Inspect, "Request worker statistics/information."),
        new("active_queues", ControlCommandKind.Inspect, "List the task queues a worker is currently consuming from."),
        new("conf", ControlCommandKind.Inspect, "List configuration.", "[include_defaults=False]", [new("with_defaults", ControlArgumentType.Boolean)], Alias: "dump_conf"),
        new("query_task", ControlCommandKind.Inspect, "Query for task information by id.", "[id1 [id2 [... [idN]]]]", Variadic: "ids"),
        new("report", ControlCommandKind.Inspect, "Information about Celery installation for bug reports."),
        new("clock", ControlCommandKind.Inspect, "Get current logical clock value."),
        new("hello", ControlCommandKind.Inspect, "Request mingle sync-data.", Visible: false),
        new("revoke", ControlCommandKind.Control, "Revoke task by task id (or list of ids).", "[id1 [id2 [... [idN]]]]", Variadic: "task_id"),
        new("terminate", ControlCommandKind.Control, "Terminate task by task id (or list of ids).", "<signal> [id1 [id2 [... [idN]]]]", [new("signal", ControlArgumentType.Text)], Variadic: "task_id"),
        new("rate_limit", ControlCommandKind.Control, "Tell worker(s) to modify the rate limit for a task by type.", "<task_name> <rate_limit (e.g., 5/s | 5/m | 5/h)>", [new("task_name", ControlArgumentType.Text), new("rate_limit", ControlArgumentType.Text)]),
        new("time_limit", ControlCommandKind.Control, "Tell worker(s) to modify the time limit for task by type.", "<task_name> <soft_secs> [hard_secs]", [new("task_name", ControlArgumentType.Text), new("soft", ControlArgumentType.Number), new("hard", ControlArgumentType.Number)]),
        new("shutdown", ControlCommandKind.Control, "Shutdown worker(s)."),
        new("pool_grow", ControlCommandKind.Control, "Grow pool by n processes/threads.", "[N=1]", [new("n", ControlArgumentType.WholeNumber)]),
        new("pool_shrink", ControlCommandKind.Control, "Shrink pool by n processes/threads.", "[N=1]", [new("n", ControlArgumentType.WholeNumber)]),
        new("pool_restart", ControlCommandKind.Control, "Restart execution pool."),
        new("autoscale", ControlCommandKind.Control, "Modify autoscale settings.", "[max [min]]", [new("max", ControlArgumentType.WholeNumber), new("min", ControlArgumentType.WholeNumber)]),
        new("add_consumer", ControlCommandKind.Control, "Tell worker(s) to consume from task queue by name.", "<queue> [exchange [type [routing_key]]]", [new("queue", ControlArgumentType.Text), new("exchange", ControlArgumentType.Text), new("exchange_type", ControlArgumentType.Text), new("routing_key", ControlArgumentType.Text)]),
        new("cancel_consumer", ControlCommandKind.Control, "Tell worker(s) to stop consuming from task queue by name.", "<queue>", [new("queue", ControlArgumentType.Text)]),
        new("enable_events", ControlCommandKind.Control, "Tell worker(s) to send task-related events."),
        new("disable_events", ControlCommandKind.Control, "Tell worker(s) to stop sending task-related events."),
        new("heartbeat", ControlCommandKind.Control, "Tell worker(s) to send event heartbeat immediately."),
        new("election", ControlCommandKind.Control, "Hold election.", "<id> <topic> [action]", [new("id", ControlArgumentType.Text), new("topic", ControlArgumentType.Text), new("action", ControlArgumentType.Text)]),
    ];

    private static readonly Dictionary<string, ControlCommandInfo> s_byName = BuildIndex();

    /// <summary>Every command, inspect ones first, in Celery's order.</summary>
    public static IReadOnlyList<ControlCommandInfo> All => s_all;

    /// <summary>Finds a command by its name or Celery's alias.</summary>
    public static bool TryGet(string name, out ControlCommandInfo? command) => s_byName.TryGetValue(name, out command);

    /// <summary>
    /// Turns command-line words into a request's arguments as <c>celery control</c> does: positional words fill the
    /// command's arguments in order, each read as its type; the rest go to its variadic keyword as a list.
    /// </summary>
    /// <exception cref="FormatException">Too many words, or a word that is not of its argument's type.</exception>
    public static Dictionary<string, object?> CompileArguments(ControlCommandInfo command, IReadOnlyList<string> words)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(words);
        var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
        int i = 0;
        for (; i < words.Count && i < command.Positional.Count; i++)
        {
            ControlArgument argument = command.Positional[i];
            arguments[argument.Name] = Convert(command, argument, words[i]);
        }

        if (i < words.Count && command.Variadic is null)
        {
            throw new FormatException($"Command '{command.Name}' takes arguments: {(command.Signature.Length == 0 ? "none" : command.Signature)}");
        }

        if (command.Variadic is { } variadic)
        {
            arguments[variadic] = words.Skip(i).Cast<object?>().ToList();
        }

        return arguments;
    }

    private static object Convert(ControlCommandInfo command, ControlArgument argument, string word)
    {
        switch (argument.Type)
        {
            case ControlArgumentType.WholeNumber when long.TryParse(word, NumberStyles.Integer, CultureInfo.InvariantCulture, out long l):
                return l;
            case ControlArgumentType.Number when double.TryParse(word, NumberStyles.Float, CultureInfo.InvariantCulture, out double d):
                return d;
            case ControlArgumentType.Boolean when word.ToUpperInvariant() is "Y" or "YES" or "T" or "TRUE" or "ON" or "1":
                return true;
            case ControlArgumentType.Boolean when word.ToUpperInvariant() is "N" or "NO" or "F" or "FALSE" or "OFF" or "0":
                return false;
            case ControlArgumentType.Text:
                return word;
            default:
                string wanted = argument.Type switch
                {
                    ControlArgumentType.WholeNumber => "an integer",
                    ControlArgumentType.Number => "a number",
                    _ => "yes or no",
                };
                throw new FormatException($"Command '{command.Name}': {argument.Name} must be {wanted}, not '{word}'");
        }
    }

    private static Dictionary<string, ControlCommandInfo> BuildIndex()
    {
        var index = new Dictionary<string, ControlCommandInfo>(StringComparer.Ordinal);
        foreach (ControlCommandInfo c in s_all)
        {
            index[c.Name] = c;
            if (c.Alias is { } alias)
            {
                index[alias] = c;
            }
        }

        return index;
    }
}
