using System.Text.Json.Nodes;
using Celeriac.Protocol;

namespace Celeriac;

/// <summary>Sends signatures: <c>await (add.S(2, 2) | mul.S(4)).ApplyAsync()</c>, <c>await Canvas.Group(...).ApplyAsync()</c>.</summary>
public static class SignatureExtensions
{
    /// <summary>
    /// Sends the signature (any shape) with <paramref name="args"/> put before its own, <paramref name="kwargs"/> merged
    /// into its own and <paramref name="options"/> over its own (Celery's <c>apply_async</c>). Returns the result of
    /// the task, of a chain's last task (its <see cref="AsyncResult.Parent"/> walks back), of a chord's body, or a
    /// <see cref="GroupResult"/> for a group.
    /// </summary>
    public static async Task<AsyncResult> ApplyAsync(this Signature signature, IEnumerable<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null, ApplyOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(signature);
        CeleriacApp app = signature.App as CeleriacApp
            ?? throw new InvalidOperationException($"The signature of '{signature.Task}' is not bound to an app: make it with task.S(...) or app.Signature(name).S(...), or send it with app.ApplyAsync(signature).");
        return await app.ApplyAsync(signature, args, kwargs, options, ct).ConfigureAwait(false);
    }

    /// <summary>Sends the signature with positional arguments put before its own (Celery's <c>delay</c>).</summary>
    public static Task<AsyncResult> DelayAsync(this Signature signature, params object?[] args) => signature.ApplyAsync(CeleriacTask.RefuseTokens(args, "ApplyAsync(args, ct: token)"));

    /// <summary>Sends the group and returns its <see cref="GroupResult"/>.</summary>
    public static async Task<GroupResult> ApplyAsync(this Group group, IEnumerable<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null, ApplyOptions? options = null, CancellationToken ct = default) =>
        (GroupResult)await ((Signature)group).ApplyAsync(args, kwargs, options, ct).ConfigureAwait(false);

    /// <summary>Sends the group with positional arguments put before each member's own.</summary>
    public static Task<GroupResult> DelayAsync(this Group group, params object?[] args) => group.ApplyAsync(CeleriacTask.RefuseTokens(args, "ApplyAsync(args, ct: token)"));

    /// <summary>Celery's apply options as a signature's <c>options</c>.</summary>
    internal static JsonObject? ToJson(this ApplyOptions? options)
    {
        if (options is null)
        {
            return null;
        }

        var o = new JsonObject();
        void Put(string key, JsonNode? value)
        {
            if (value is not null)
            {
                o[key] = value;
            }
        }

        Put("task_id", options.TaskId);
        Put("queue", options.Queue);
        Put("countdown", options.Countdown?.TotalSeconds);
        Put("eta", options.Eta is { } eta ? CeleryJson.FormatIso(eta) : null);
        Put("expires", options.Expires is { } expires ? CeleryJson.FormatIso(expires) : options.ExpiresIn?.TotalSeconds);
        Put("priority", options.Priority);
        Put("shadow", options.Shadow);
        Put("ignore_result", options.IgnoreResult ? true : null);
        Put("time_limit", options.TimeLimit?.TotalSeconds);
        Put("soft_time_limit", options.SoftTimeLimit?.TotalSeconds);
        Put("root_id", options.RootId);
        Put("parent_id", options.ParentId);
        Put("group_id", options.GroupId);
        Put("group_index", options.GroupIndex);
        if (options.Headers is { Count: > 0 } headers)
        {
            o["headers"] = new JsonObject(headers.Select(kv => KeyValuePair.Create(kv.Key, Signature.ToNode(kv.Value))));
        }

        return o;
    }
}
