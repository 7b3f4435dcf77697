using System.CommandLine;
using System.Globalization;
using Celeriac.Control;

namespace Celeriac.Cli.Commands.Remote;

/// <summary>
/// <c>celeriac inspect</c>, <c>control</c> and <c>status</c>, ported from Celery's <c>celery/bin/control.py</c>: the
/// same replies printed the same way (<c>-&gt;  node: OK</c> and the reply indented), the same JSON, the same exit
/// code 69 when no worker replied in time.
/// </summary>
internal static class RemoteCommand
{
    /// <summary>Celery's <c>CeleryCommandException</c> message when the gathering window closed empty.</summary>
    public const string NoReplies = "No nodes replied within time constraint";

    public static async Task<int> RunAsync(CliContext context, RemoteCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        string name = parse.GetValue(definition.CommandArgument)!;
        ControlCommandInfo command = Find(definition.Kind, name);
        Dictionary<string, object?> arguments;
        try
        {
            arguments = ControlCommands.CompileArguments(command, parse.GetValue(definition.WordsArgument) ?? []);
        }
        catch (FormatException ex)
        {
            throw new CliUsageException(ex.Message, ex);
        }

        ControlOptions options = definition.Remote.ToControlOptions(parse);
        bool json = parse.GetValue(definition.Remote.Json);
        CliSession session = context.Open(parse);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        IReadOnlyList<ControlReply> replies = await session.App.Control.BroadcastAsync(command.Name, arguments, options, ct).ConfigureAwait(false);
        if (replies.Count == 0)
        {
            context.WriteError("Error: " + NoReplies);
            return ExitCodes.Unavailable;
        }

        if (json)
        {
            // As Celery's: inspect prints its replies merged by node, control the list broadcast() returned.
            object document = definition.Kind == ControlCommandKind.Inspect
                ? ByNode(replies)
                : replies.Select(r => (object?)new Dictionary<string, object?>(StringComparer.Ordinal) { [r.Node] = PyText.Plain(r.Value) }).ToList();
            await WriteAsync(context, PyText.Dumps(document), ct).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        foreach (ControlReply reply in replies)
        {
            await WriteAsync(context, Chat(reply, showBody: true), ct).ConfigureAwait(false);
        }

        if (definition.Kind == ControlCommandKind.Inspect)
        {
            await WriteAsync(context, Environment.NewLine + Online(ByNode(replies).Count), ct).ConfigureAwait(false);
        }

        return ExitCodes.Ok;
    }

    public static async Task<int> StatusAsync(CliContext context, StatusCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        ControlOptions options = definition.Remote.ToControlOptions(parse);
        bool json = parse.GetValue(definition.Remote.Json);
        CliSession session = context.Open(parse);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        IReadOnlyList<ControlReply> replies = await session.App.Control.BroadcastAsync("ping", null, options, ct).ConfigureAwait(false);
        if (replies.Count == 0)
        {
            context.WriteError("Error: " + NoReplies);
            return ExitCodes.Unavailable;
        }

        Dictionary<string, object?> byNode = ByNode(replies);
        if (json)
        {
            // Celery also prints the count after the JSON; left out so that the output stays one JSON document.
            await WriteAsync(context, PyText.Dumps(byNode), ct).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        foreach (ControlReply reply in replies)
        {
            await WriteAsync(context, Chat(reply, showBody: false), ct).ConfigureAwait(false);
        }

        await WriteAsync(context, Environment.NewLine + Online(byNode.Count), ct).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    /// <summary>The command by name or alias, if the verb offers it; else a usage error listing the choices (as click's).</summary>
    internal static ControlCommandInfo Find(ControlCommandKind kind, string name)
    {
        if (ControlCommands.TryGet(name, out ControlCommandInfo? command) && command is { Visible: true } && command.Kind == kind)
        {
            return command;
        }

        string choices = string.Join(", ", RemoteCommandDefinition.Offered(kind).Select(c => "'" + c.Name + "'"));
        throw new CliUsageException($"Invalid value for 'COMMAND': '{name}' is not one of {choices}.");
    }

    /// <summary>Celery's <c>_say_remote_command_reply</c>: <c>-&gt;  node: OK</c> (or <c>ERROR</c>), then the reply indented.</summary>
    internal static string Chat(ControlReply reply, bool showBody)
    {
        (bool ok, string body) = Pretty(PyText.Plain(reply.Value));
        string title = $"->  {reply.Node}: {(ok ? "OK" : "ERROR")}";
        return showBody && body.Length > 0 ? title + "\n" + PyText.Indent(body, 4) : title;
    }

    /// <summary>Celery's <c>CLIContext.pretty</c>: lists as <c>* item</c> lines, <c>{"ok"}</c>/<c>{"error"}</c> as their text, other dicts as sorted, indented JSON.</summary>
    internal static (bool Ok, string Body) Pretty(object? value)
    {
        switch (value)
        {
            case List<object?> list:
                return (true, list.Count == 0 ? "- empty -" : string.Join('\n', list.Select(item => "* " + PyText.Str(item))));
            case Dictionary<string, object?> dict when dict.TryGetValue("ok", out object? ok):
                return (true, PyText.Indent(Pretty(ok).Body, 4));
            case Dictionary<string, object?> dict when dict.TryGetValue("error", out object? error):
                return (false, PyText.Indent(Pretty(error).Body, 4));
            case Dictionary<string, object?> dict:
                return (true, PyText.Dumps(dict, indent: 4, sortKeys: true));
            case string text:
                return (true, text);
            default:
                return (true, PyText.Repr(value));
        }
    }

    private static Dictionary<string, object?> ByNode(IEnumerable<ControlReply> replies)
    {
        var byNode = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (ControlReply r in replies)
        {
            byNode.TryAdd(r.Node, PyText.Plain(r.Value));
        }

        return byNode;
    }

    private static string Online(int count) =>
        string.Create(CultureInfo.InvariantCulture, $"{count} {(count == 1 ? "node" : "nodes")} online.");

    private static Task WriteAsync(CliContext context, string text, CancellationToken ct) =>
        context.Out.WriteLineAsync(text.ReplaceLineEndings().AsMemory(), ct);
}
