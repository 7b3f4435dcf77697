using System.Text.Json;
using System.Text.Json.Nodes;
using Celeriac.Concurrency;
using Celeriac.Diagnostics;
using Celeriac.Protocol;
using Celeriac.Results;
using Microsoft.Extensions.Logging;

namespace Celeriac.Worker;

/// <summary>
/// Before the result is stored (as Celery's tracer does, so that the result names them in <c>children</c>): a
/// succeeded task's callbacks (<c>link</c>) are sent with its return value, and so is the next step of its chain.
/// </summary>
internal sealed class WorkflowStep(CeleriacApp app, ILogger logger) : IPostRunStep
{
    public int Order => -10;

    public ValueTask AfterRunAsync(FinishedTask task, CancellationToken ct) =>
        task.Outcome.Kind == TaskOutcomeKind.Succeeded && task.Message.HasWorkflow ? SendAsync(task, ct) : ValueTask.CompletedTask;

    private async ValueTask SendAsync(FinishedTask task, CancellationToken ct)
    {
        TaskMessage message = task.Message;
        TaskHeaders h = message.Headers;
        JsonNode? retval = JsonNode.Parse(task.Outcome.Result ?? "null"u8.ToArray());
        JsonObject options = CanvasSteps.ChildOptions(message);
        Action<AsyncResult> trail = task.AddChild;
        try
        {
            // Celery's trace: one callback is sent alone; several go as one group (groups among them each on their own).
            List<Signature> callbacks = CanvasRunner.EmbedList(message.Embed, "callbacks");
            if (callbacks.Count == 1)
            {
                await app.Canvas.ApplyAsync(callbacks[0], [retval], null, options, trail, ct).ConfigureAwait(false);
            }
            else if (callbacks.Count > 1)
            {
                foreach (Signature group in callbacks.Where(c => c is Group))
                {
                    await app.Canvas.ApplyAsync(group, [retval], null, options, trail, ct).ConfigureAwait(false);
                }

                List<Signature> plain = [.. callbacks.Where(c => c is not Group)];
                if (plain.Count > 0)
                {
                    await app.Canvas.ApplyAsync(new Group(plain) { App = app }, [retval], null, options, trail, ct).ConfigureAwait(false);
                }
            }

            // The chain is kept last step first: the next step is the last element, sent with the rest.
            List<Signature> chain = CanvasRunner.EmbedList(message.Embed, "chain");
            if (chain.Count > 0)
            {
                Signature next = chain[^1];
                var rest = new JsonArray([.. chain.Take(chain.Count - 1).Select(s => (JsonNode)s.ToJson())]);
                var chainOptions = (JsonObject)options.DeepClone();
                chainOptions["chain"] = rest;
                await app.Canvas.ApplyAsync(next, [retval], null, chainOptions, trail, ct).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.CanvasFailed(logger, h.Task, h.Id, "send its callbacks or the next step of its chain", ex);
        }
    }
}

/// <summary>
/// After the result is stored (Celery's <c>mark_as_done</c> / <c>mark_as_failure</c> / <c>mark_as_revoked</c>): a
/// chord member reports its part, and the member that completes the chord sends the body (or fails it with
/// <c>ChordError</c>); a failed task's error callbacks run, and the rest of its chain is failed with it.
/// </summary>
internal sealed class ChordStep(CeleriacApp app, ILogger logger) : IPostRunStep
{
    public int Order => 10;

    public ValueTask AfterRunAsync(FinishedTask task, CancellationToken ct)
    {
        if (!task.Message.HasEmbed)
        {
            return ValueTask.CompletedTask;
        }

        TaskOutcome o = task.Outcome;
        return o.Kind switch
        {
            TaskOutcomeKind.Succeeded => PartAsync(task, task.Message, TaskStates.Success, o.Result ?? "null"u8.ToArray(), ct),
            TaskOutcomeKind.Failed or TaskOutcomeKind.TimeLimitExceeded => FailedAsync(task, o.Result!, o.Traceback, ct),
            TaskOutcomeKind.WorkerLost or TaskOutcomeKind.ShutdownCut when task.Settlement != Settlement.Requeue =>
                FailedAsync(task, TaskResultMeta.SerializeException(ResultDocuments.WorkerLost(o.Reason)), null, ct),
            TaskOutcomeKind.Revoked => PartAsync(task, task.Message, TaskStates.Revoked, TaskResultMeta.SerializeException(new ExceptionInfo("TaskRevokedError", o.Reason ?? "revoked", "celery.exceptions")), ct),
            _ => ValueTask.CompletedTask,
        };
    }

    private async ValueTask FailedAsync(FinishedTask task, byte[] exc, string? traceback, CancellationToken ct)
    {
        TaskMessage message = task.Message;
        TaskHeaders h = message.Headers;
        await PartAsync(task, message, TaskStates.Failure, exc, ct).ConfigureAwait(false);
        try
        {
            // As Celery: every later step of the chain fails too (so that whoever waits on the chain's end is told),
            // and a step that is a chord member reports its part, so that the chord does not wait for ever.
            foreach (Signature step in CanvasRunner.EmbedList(message.Embed, "chain"))
            {
                if (step.Id is { } id)
                {
                    await app.ResultBackend.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Failure, Result = exc, Traceback = traceback, DateDone = app.Options.TimeProvider.GetUtcNow() }, ct).ConfigureAwait(false);
                }

                if (step.Options["chord"] is JsonObject chord && step.Id is { } stepId && CanvasRunner.Str(step.Options, "group_id") is { } group)
                {
                    long? index = step.Options["group_index"] is JsonValue gi && gi.TryGetValue(out long i) ? i : null;
                    Signature body = Signature.FromJson(chord);
                    await ReportPartAsync(new ChordPartReturn(group, index, stepId, TaskStates.Failure, exc, body.ChordSize), body, stepId, h.RootId, ct).ConfigureAwait(false);
                }
            }

            await InlineCalls.CallErrbacksAsync(app, CanvasRunner.EmbedList(message.Embed, "errbacks"), InlineCalls.RequestJson(message, task.Hostname), exc, traceback, h.Id, h.RootId ?? h.Id, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.CanvasFailed(logger, h.Task, h.Id, "fail the rest of its chain or run its error callbacks", ex);
        }
    }

    private async ValueTask PartAsync(FinishedTask task, TaskMessage message, string state, byte[] result, CancellationToken ct)
    {
        TaskHeaders h = message.Headers;
        if (message.Embed.TryGetProperty("chord"u8, out JsonElement chordElement) && chordElement.ValueKind == JsonValueKind.Object && h.Group is { } group)
        {
            Signature body = Signature.FromJson(chordElement);
            await ReportPartAsync(new ChordPartReturn(group, h.GroupIndex, h.Id, state, result, body.ChordSize), body, h.Id, h.RootId, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Reports one part; the part that completes the chord sends the body with the results in order, or fails it.</summary>
    private async ValueTask ReportPartAsync(ChordPartReturn part, Signature body, string memberId, string? rootId, CancellationToken ct)
    {
        ChordJoin? join;
        try
        {
            join = await app.ResultBackend.AddChordPartAsync(part, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.ChordFailed(logger, part.GroupId, "its join failed", ex);
            await CanvasSteps.ChordErrorAsync(app, body, $"Join error: {ex.GetType().Name}('{ex.Message}')", ct).ConfigureAwait(false);
            return;
        }

        if (join is null)
        {
            return;
        }

        IReadOnlyList<ChordPart> parts = join.Parts;
        if (parts.FirstOrDefault(p => p.State is TaskStates.Failure or TaskStates.Revoked or TaskStates.Pending) is { } culprit)
        {
            string raised = culprit.State == TaskStates.Pending
                ? "no result (it ignores its result or its result expired)"
                : ExceptionInfo.Read(culprit.Result).ToPythonRepr();
            string reason = $"Dependency {culprit.TaskId} raised {raised}";
            Log.ChordFailed(logger, part.GroupId, reason, null);
            await CanvasSteps.ChordErrorAsync(app, body, reason, ct).ConfigureAwait(false);
            return;
        }

        JsonArray results = join.NestedHeader is { } nested
            ? Nest(JsonDocument.Parse(nested, new JsonDocumentOptions { MaxDepth = 512 }).RootElement, parts.ToDictionary(p => p.TaskId, p => p.Result, StringComparer.Ordinal))
            : new JsonArray([.. parts.Select(p => JsonNode.Parse(p.Result.GetRawText()))]);
        try
        {
            var options = new JsonObject { ["parent_id"] = memberId, ["root_id"] = rootId };
            await app.Canvas.ApplyAsync(body, [results], null, options, null, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.ChordFailed(logger, part.GroupId, "its body could not be sent", ex);
            await CanvasSteps.ChordErrorAsync(app, body, $"Callback error: {ex.GetType().Name}('{ex.Message}')", ct).ConfigureAwait(false);
        }
    }

    /// <summary>The results shaped as the header: a member that is a group gives the list of its members' results.</summary>
    private static JsonArray Nest(JsonElement tuples, Dictionary<string, JsonElement> results)
    {
        var list = new JsonArray();
        foreach (JsonElement t in tuples.EnumerateArray())
        {
            if (t[1].ValueKind == JsonValueKind.Array)
            {
                list.Add((JsonNode)Nest(t[1], results));
            }
            else
            {
                list.Add(results.TryGetValue(t[0][0].GetString()!, out JsonElement value) ? JsonNode.Parse(value.GetRawText()) : null);
            }
        }

        return list;
    }
}

/// <summary>What the canvas steps and the built-in tasks share: error callbacks and chord errors as Celery's backend runs them.</summary>
internal static class CanvasSteps
{
    /// <summary>The options of what a task sends after it: its id as their parent, its root as theirs.</summary>
    public static JsonObject ChildOptions(TaskMessage message)
    {
        TaskHeaders h = message.Headers;
        // Celery passes the task's priority on only with task_inherit_parent_priority (off by default): a step keeps its own.
        return new JsonObject { ["parent_id"] = h.Id, ["root_id"] = h.RootId ?? h.Id };
    }

    /// <summary>
    /// Celery's <c>chord_error_from_stack</c>: the body's error callbacks run as for a failed task whose id is the
    /// body's, and the body is stored as FAILURE with <c>ChordError</c>.
    /// </summary>
    public static async Task ChordErrorAsync(CeleriacApp app, Signature body, string reason, CancellationToken ct)
    {
        byte[] exc = TaskResultMeta.SerializeException(new ExceptionInfo("ChordError", reason, "celery.exceptions"));
        string? bodyId = body.Id;
        JsonObject request = body.ToJson();
        request["id"] = bodyId;
        AsyncResult? errbacks = null;
        try
        {
            errbacks = await InlineCalls.CallErrbacksAsync(app, body.ErrorLinks.ToList(), request, exc, null, bodyId ?? "", CanvasRunner.Str(body.Options, "root_id") ?? bodyId ?? "", ct).ConfigureAwait(false);
        }
        finally
        {
            if (bodyId is not null)
            {
                // As Celery's: the failed body names the error callbacks sent for it as its children.
                byte[] children = errbacks is null ? "[]"u8.ToArray() : System.Text.Encoding.UTF8.GetBytes(new JsonArray(errbacks.AsTuple()).ToJsonString());
                await app.ResultBackend.StoreAsync(new TaskResultMeta { TaskId = bodyId, Status = TaskStates.Failure, Result = exc, Children = children, DateDone = app.Options.TimeProvider.GetUtcNow() }, ct).ConfigureAwait(false);
            }
        }
    }
}
