using System.Text.Json;
using System.Text.Json.Nodes;
using Celeriac.Protocol;
using Celeriac.Transport;

namespace Celeriac;

/// <summary>
/// Calls run in this process rather than sent: a registered task's code with a signature's arguments, and Celery's
/// error callbacks of a failed task. The worker (after a failure, a chord's error, the canvas builtins) and eager mode
/// share them, so that an error callback gets the same arguments either way.
/// </summary>
internal static class InlineCalls
{
    /// <summary>
    /// Celery's <c>_call_task_errbacks</c>: an error callback that is a task registered here and takes more than one
    /// argument is new-style, run here at once with <c>(request, exc, traceback)</c>; the others are old-style, sent as a
    /// group with the failed task's id.
    /// </summary>
    public static async Task<AsyncResult?> CallErrbacksAsync(CeleriacApp app, List<Signature> errbacks, JsonObject request, byte[] exc, string? traceback, string taskId, string rootId, CancellationToken ct)
    {
        var oldStyle = new List<Signature>();
        foreach (Signature errback in errbacks)
        {
            if (app.Tasks.TryGet(errback.Task, out CeleriacTask? task) && task.Invoker is { } invoker && invoker.JsonParameters.Count() > 1)
            {
                await RunHereAsync(app, task, errback, [request, JsonNode.Parse(exc), traceback], ct).ConfigureAwait(false);
            }
            else
            {
                oldStyle.Add(errback);
            }
        }

        if (oldStyle.Count == 0)
        {
            return null;
        }

        var group = new Group(oldStyle) { App = app };
        if (app.Options.TaskAlwaysEager)
        {
            // As Celery's apply_async under task_always_eager: the group runs here, now.
            return await app.Eager.ApplyAsync(group, [taskId], null, null, ct).ConfigureAwait(false);
        }

        var options = new JsonObject { ["parent_id"] = taskId, ["root_id"] = rootId };
        return await app.Canvas.ApplyAsync(group, [taskId], null, options, null, ct).ConfigureAwait(false);
    }

    /// <summary>Runs a registered task's code in this process with a signature's arguments after <paramref name="args"/> (Celery's <c>sig(*args)</c>).</summary>
    public static async Task<object?> RunHereAsync(CeleriacApp app, CeleriacTask task, Signature sig, IEnumerable<object?> args, CancellationToken ct)
    {
        Signature call = sig.Clone(args);
        TransportMessage transport = app.BuildMessage(
            call.Task,
            [.. call.Args.Select(a => (object?)Signature.ToElement(a))],
            call.Kwargs.ToDictionary(kv => kv.Key, kv => (object?)Signature.ToElement(kv.Value), StringComparer.Ordinal),
            new ApplyOptions(),
            out string queue);
        if (!TaskMessage.TryDecode(transport, out TaskMessage? message, out _, out _, out string? error))
        {
            throw new InvalidOperationException("could not build the call of " + call.Task + ": " + error);
        }

        using (message)
        {
            var context = new TaskContext(message!, queue, "", ct) { Definition = task };
            return await task.Invoker!.InvokeAsync(message!, context, app.Options.Services).ConfigureAwait(false);
        }
    }

    /// <summary>The failed task's request as a new-style error callback receives it (Celery passes its <c>Context</c>).</summary>
    public static JsonObject RequestJson(TaskMessage message, string hostname)
    {
        TaskHeaders h = message.Headers;
        return new JsonObject
        {
            ["id"] = h.Id,
            ["task"] = h.Task,
            ["args"] = JsonNode.Parse(message.Args.GetRawText()),
            ["kwargs"] = JsonNode.Parse(message.Kwargs.GetRawText()),
            ["root_id"] = h.RootId,
            ["parent_id"] = h.ParentId,
            ["group"] = h.Group,
            ["group_index"] = h.GroupIndex,
            ["retries"] = h.Retries,
            ["eta"] = h.Eta is { } eta ? CeleryJson.FormatIso(eta) : null,
            ["expires"] = h.Expires is { } expires ? CeleryJson.FormatIso(expires) : null,
            ["hostname"] = hostname,
            ["origin"] = h.Origin,
            ["reply_to"] = message.Transport.ReplyTo,
            ["correlation_id"] = h.Id,
            ["delivery_info"] = new JsonObject { ["exchange"] = message.Transport.Exchange, ["routing_key"] = message.Transport.RoutingKey },
            ["callbacks"] = EmbedPart(message, "callbacks"),
            ["errbacks"] = EmbedPart(message, "errbacks"),
            ["chain"] = EmbedPart(message, "chain"),
            ["chord"] = EmbedPart(message, "chord"),
        };

        static JsonNode? EmbedPart(TaskMessage message, string name) =>
            message.Embed.ValueKind == JsonValueKind.Object && message.Embed.TryGetProperty(name, out JsonElement e) ? JsonNode.Parse(e.GetRawText()) : null;
    }
}
