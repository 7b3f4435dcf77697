using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Nodes;
using Celeriac.Results;

namespace Celeriac.Worker;

/// <summary>
/// Celery's built-in canvas tasks (<c>celery/app/builtins.py</c>), so that what a Celery client sends for a map, a
/// starmap, chunks, a replaced group or a chord on a backend without a native join runs on a Celeriac worker too.
/// </summary>
internal static class CanvasBuiltins
{
    /// <summary>Registers the built-ins an app does not define itself.</summary>
    public static void Register(CeleriacApp app)
    {
        Add(app, "celery.accumulate", (TaskContext context, IReadOnlyDictionary<string, JsonElement> kwargs, params JsonElement[] args) =>
            kwargs.TryGetValue("index", out JsonElement index) && index.ValueKind == JsonValueKind.Number
                ? (object)args[index.GetInt32()]
                : args);
        Add(app, "celery.map", (JsonElement task, JsonElement it, CancellationToken ct) => MapAsync(app, task, it, star: false, ct));
        Add(app, "celery.starmap", (JsonElement task, JsonElement it, CancellationToken ct) => MapAsync(app, task, it, star: true, ct));
        Add(app, "celery.chunks", async (JsonElement task, JsonElement it, int n, CancellationToken ct) =>
        {
            Chunks chunks = Canvas.Chunks(Signature.FromJson(task), it.EnumerateArray().Select(e => (object?)e.Clone()), n);
            AsyncResult result = await app.ApplyAsync(chunks.ToGroup(), ct: ct).ConfigureAwait(false);
            return result.AsTuple();
        });
        Add(app, "celery.chord_unlock", ChordUnlockAsync(app), new TaskOptions { MaxRetries = null, DefaultRetryDelay = TimeSpan.FromSeconds(1), IgnoreResult = true });
        Add(app, "celery.group", async (JsonElement tasks, JsonElement result, string group_id, JsonElement partial_args, CancellationToken ct) =>
        {
            object?[] partial = Values(partial_args);
            foreach (JsonElement t in tasks.EnumerateArray())
            {
                await app.Canvas.ApplyAsync(Signature.FromJson(t), partial, null, new JsonObject { ["group_id"] = group_id }, null, ct).ConfigureAwait(false);
            }

            return result.Clone();
        });
        Add(app, "celery.chord", async (JsonElement header, JsonElement body, CancellationToken ct, JsonElement? partial_args = null) =>
        {
            Signature h = Signature.FromJson(header);
            var chord = new Chord(h as Group ?? new Group(h is Chain c ? c.Tasks : [h]), Signature.FromJson(body)) { App = app };
            object?[] partial = partial_args is { } p ? Values(p) : [];
            AsyncResult result = await app.ApplyAsync(chord, partial, ct: ct).ConfigureAwait(false);
            return result.Id;
        });
        Add(app, "celery.chain", (Func<object?>)(() => throw new NotSupportedException("chain is not a real task")));
        Add(app, "celery.backend_cleanup", () => { });
    }

    /// <summary>The elements of a JSON list as argument values; anything else gives none.</summary>
    private static object?[] Values(JsonElement list) =>
        list.ValueKind == JsonValueKind.Array ? [.. list.EnumerateArray().Select(e => (object?)e.Clone())] : [];

    // The built-ins are lambdas compiled into this assembly (their methods are rooted by the delegates themselves); their
    // parameters are JSON elements, strings, ints, the context and the token, and their results are reference types.
    // Under NativeAOT the reflection invoker's expression trees run interpreted; scripts/aot-sample.sh runs a Python
    // client's chain, group, chord (into celery.accumulate), celery.starmap and celery.chunks on the NativeAOT sample.
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Built-in lambdas of this assembly; see above.")]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Built-in lambdas of this assembly; see above.")]
    private static void Add(CeleriacApp app, string name, Delegate handler, TaskOptions? options = null)
    {
        if (!app.Tasks.TryGet(name, out _))
        {
            app.Task(name, handler, options);
        }
    }

    /// <summary>Celery's <c>celery.map</c>/<c>celery.starmap</c>: the task's code is called here for each item, in turn.</summary>
    private static async Task<List<object?>> MapAsync(CeleriacApp app, JsonElement task, JsonElement it, bool star, CancellationToken ct)
    {
        Signature sig = Signature.FromJson(task);
        if (!app.Tasks.TryGet(sig.Task, out CeleriacTask? registered) || registered.Invoker is null)
        {
            throw new KeyNotFoundException($"'{sig.Task}'");
        }

        var results = new List<object?>();
        foreach (JsonElement item in it.EnumerateArray())
        {
            object?[] args = star && item.ValueKind == JsonValueKind.Array ? Values(item) : [item.Clone()];
            results.Add(await InlineCalls.RunHereAsync(app, registered, sig, args, ct).ConfigureAwait(false));
        }

        return results;
    }

    /// <summary>
    /// Celery's <c>celery.chord_unlock</c>, which a Celery client sends when its result backend has no native join:
    /// it retries every second until the header's results are all ready, then sends the body, or fails it.
    /// </summary>
    private static Func<TaskContext, string, JsonElement, IReadOnlyDictionary<string, JsonElement>, Task> ChordUnlockAsync(CeleriacApp app) =>
        async (context, group_id, callback, kwargs) =>
        {
            Signature body = Signature.FromJson(callback);
            IReadOnlyList<AsyncResult> members = kwargs.TryGetValue("result", out JsonElement result) && result.ValueKind == JsonValueKind.Array
                ? [.. result.EnumerateArray().Select(t => CanvasResults.FromTuple(JsonNode.Parse(t.GetRawText(), documentOptions: new JsonDocumentOptions { MaxDepth = Protocol.JsonValues.MaxDepth })!, app.ResultBackend, app))]
                : [];
            var set = new ResultSet(members);
            await set.RefreshAsync(context.CancellationToken).ConfigureAwait(false);
            if (!set.Ready)
            {
                TimeSpan interval = kwargs.TryGetValue("interval", out JsonElement i) && i.ValueKind == JsonValueKind.Number ? TimeSpan.FromSeconds(i.GetDouble()) : TimeSpan.FromSeconds(1);
                int? max = kwargs.TryGetValue("max_retries", out JsonElement m) && m.ValueKind == JsonValueKind.Number ? m.GetInt32() : null;
                throw await context.RetryAsync(countdown: interval, maxRetries: max ?? int.MaxValue).ConfigureAwait(false);
            }

            if (members.FirstOrDefault(r => r.State is TaskStates.Failure or TaskStates.Revoked) is { } culprit)
            {
                string raised = (culprit.Meta?.Exception ?? new ExceptionInfo("Exception", culprit.State, null)).ToPythonRepr();
                await CanvasSteps.ChordErrorAsync(app, body, $"Dependency {culprit.Id} raised {raised}", context.CancellationToken).ConfigureAwait(false);
                return;
            }

            var values = new JsonArray([.. members.Select(r => JsonNode.Parse(r.Meta!.Result.Span))]);
            await app.Canvas.ApplyAsync(body, [values], null, null, null, context.CancellationToken).ConfigureAwait(false);
        };
}
