using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Celeriac.Protocol;
using Celeriac.Results;

namespace Celeriac;

/// <summary>
/// Handles on several results read together (Celery's <c>ResultSet</c>). The state properties show the last read
/// (<see cref="RefreshAsync"/>); <see cref="GetAsync{T}"/> waits for every member and returns their values in order.
/// </summary>
public class ResultSet
{
    /// <summary>Creates a set of results (constructible in tests).</summary>
    public ResultSet(IEnumerable<AsyncResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        Results = [.. results];
    }

    /// <summary>The members, in order.</summary>
    public IReadOnlyList<AsyncResult> Results { get; }

    /// <summary>How many members had succeeded at the last read (Celery's <c>completed_count()</c>).</summary>
    public int CompletedCount => Results.Count(r => r.Successful);

    /// <summary>Whether every member was ready at the last read.</summary>
    public bool Ready => Results.All(r => r.Ready);

    /// <summary>Whether every member had succeeded at the last read.</summary>
    public bool Successful => Results.All(r => r.Successful);

    /// <summary>Whether any member had failed at the last read.</summary>
    public bool Failed => Results.Any(r => r.Failed);

    /// <summary>Whether any member was not ready at the last read.</summary>
    public bool Waiting => !Ready;

    /// <summary>Reads every member's state again.</summary>
    public async Task RefreshAsync(CancellationToken ct = default)
    {
        foreach (AsyncResult r in Results)
        {
            await r.RefreshAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits for every member and returns their values in the members' order (Celery's <c>join()</c>). Throws the
    /// first failed member's <see cref="TaskFailedException"/>, and <see cref="TimeoutException"/> when the whole set is
    /// not ready within <paramref name="timeout"/>.
    /// </summary>
    public async Task<IReadOnlyList<T?>> GetAsync<T>(TimeSpan? timeout = null, CancellationToken ct = default)
    {
        TaskResultMeta[] metas = await WaitAllAsync(timeout, ct).ConfigureAwait(false);
        var values = new List<T?>(metas.Length);
        for (int i = 0; i < metas.Length; i++)
        {
            TaskResultMeta meta = metas[i];
            if (meta.Status != TaskStates.Success)
            {
                throw new TaskFailedException(Results[i].Id, meta.Status, meta.Exception ?? new ExceptionInfo("Exception", meta.Status, null), meta.Traceback);
            }

            values.Add(AsyncResult.ReadValue<T>(meta, Results[i].Id, Results[i].Name));
        }

        return values;
    }

    /// <summary>Waits for every member and returns their JSON values in order.</summary>
    public async Task<IReadOnlyList<JsonElement>> GetAsync(TimeSpan? timeout = null, CancellationToken ct = default) =>
        [.. await GetAsync<JsonElement>(timeout, ct).ConfigureAwait(false)];

    /// <summary>Waits until every member is ready and returns their documents, in order, whatever their states.</summary>
    public async Task<TaskResultMeta[]> WaitAllAsync(TimeSpan? timeout = null, CancellationToken ct = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (timeout is { } t)
        {
            cts.CancelAfter(t);
        }

        try
        {
            // Members are awaited together: a thousand waits cost one round trip each, not a thousand in a row.
            return await Task.WhenAll(Results.Select(r => r.WaitAsync(null, cts.Token))).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"The results of {Results.Count} tasks were not all ready within {timeout}.");
        }
    }

    /// <summary>Revokes every member.</summary>
    public async Task RevokeAsync(bool terminate = false, CancellationToken ct = default)
    {
        if (Results.Count == 0)
        {
            return;
        }

        CeleriacApp app = Results.Select(r => r.App).FirstOrDefault(a => a is not null)
            ?? throw new InvalidOperationException("these results were not made by an app: revoke them with CeleriacApp.RevokeAsync");
        await app.RevokeAsync(Results.Select(r => r.Id), terminate, ct).ConfigureAwait(false);
    }
}

/// <summary>
/// The result of a group (Celery's <c>GroupResult</c>): its id and its members' results, in order. Waiting on it
/// waits for every member; <see cref="AsyncResult.GetAsync{T}"/> with a list type returns the values in order.
/// </summary>
public sealed class GroupResult : AsyncResult
{
    private readonly ResultSet _set;

    /// <summary>Creates a handle on a group (constructible in tests).</summary>
    public GroupResult(string id, IEnumerable<AsyncResult> results, IResultBackend backend)
        : base(id, backend)
    {
        _set = new ResultSet(results);
    }

    /// <summary>The members, in order.</summary>
    public IReadOnlyList<AsyncResult> Results => _set.Results;

    /// <summary>The members as a <see cref="ResultSet"/>.</summary>
    public ResultSet Set => _set;

    /// <summary>How many members had succeeded at the last read.</summary>
    public int CompletedCount => _set.CompletedCount;

    /// <summary>Whether every member was ready at the last read.</summary>
    public override bool Ready => _set.Ready;

    /// <summary>Whether every member had succeeded at the last read.</summary>
    public override bool Successful => _set.Successful;

    /// <summary>Whether any member had failed at the last read.</summary>
    public override bool Failed => _set.Failed;

    /// <summary>Reads every member's state again.</summary>
    public Task RefreshAllAsync(CancellationToken ct = default) => _set.RefreshAsync(ct);

    /// <summary>Waits for every member and returns their values in order (Celery's <c>join()</c>).</summary>
    public Task<IReadOnlyList<T?>> JoinAsync<T>(TimeSpan? timeout = null, CancellationToken ct = default) => _set.GetAsync<T>(timeout, ct);

    /// <summary>
    /// Waits for every member; returns a SUCCESS document whose result is the list of values, or the first failed
    /// member's document.
    /// </summary>
    public override async Task<TaskResultMeta> WaitAsync(TimeSpan? timeout = null, CancellationToken ct = default)
    {
        TaskResultMeta[] metas = await _set.WaitAllAsync(timeout, ct).ConfigureAwait(false);
        if (metas.FirstOrDefault(m => m.Status != TaskStates.Success) is { } failed)
        {
            return failed;
        }

        var list = new JsonArray([.. metas.Select(m => JsonNode.Parse(m.Result.Span))]);
        return new TaskResultMeta { TaskId = Id, Status = TaskStates.Success, Result = Encoding.UTF8.GetBytes(list.ToJsonString()) };
    }

    /// <summary>Revokes every member.</summary>
    public override Task RevokeAsync(bool terminate = false, CancellationToken ct = default) => _set.RevokeAsync(terminate, ct);

    /// <summary>Saves the group in the result backend (<c>celery-taskset-meta-&lt;id&gt;</c>, as Celery's <c>save()</c>), so that any client can restore it.</summary>
    public async Task SaveAsync(CancellationToken ct = default) =>
        await Backend.SaveGroupAsync(Id, [.. Results.Select(r => r.Id)], ct).ConfigureAwait(false);

    /// <summary>Deletes the saved group.</summary>
    public async Task DeleteAsync(CancellationToken ct = default) => await Backend.ForgetGroupAsync(Id, ct).ConfigureAwait(false);

    /// <summary>Reads a saved group (Celery's <c>GroupResult.restore(id)</c>), or <see langword="null"/> when none is saved.</summary>
    public static async Task<GroupResult?> RestoreAsync(CeleriacApp app, string groupId, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(app);
        IReadOnlyList<string>? ids = await app.ReadBackend.RestoreGroupAsync(groupId, ct).ConfigureAwait(false);
        return ids is null ? null : new GroupResult(groupId, ids.Select(app.AsyncResult), app.ReadBackend) { App = app };
    }

    internal override JsonNode AsTuple() =>
        new JsonArray(new JsonArray(Id, Parent?.AsTuple()), new JsonArray([.. Results.Select(r => r.AsTuple())]));
}

/// <summary>Reads Celery's result tuples (<c>[[id, parent], children]</c>) back into handles.</summary>
internal static class CanvasResults
{
    public static IReadOnlyList<AsyncResult> FromTuples(ReadOnlySpan<byte> json, IResultBackend backend, CeleriacApp? app)
    {
        if (json.IsEmpty || JsonNode.Parse(json) is not JsonArray list)
        {
            return [];
        }

        return [.. list.Where(n => n is JsonArray).Select(n => FromTuple(n!, backend, app))];
    }

    public static AsyncResult FromTuple(JsonNode tuple, IResultBackend backend, CeleriacApp? app)
    {
        // [[id, parent], nodes] or, from old clients, [id, nodes].
        JsonNode? head = tuple[0];
        string id = head is JsonArray pair ? (string)pair[0]! : (string)head!;
        AsyncResult? parent = head is JsonArray p && p.Count > 1 && p[1] is JsonArray pt ? FromTuple(pt, backend, app) : null;
        AsyncResult result = tuple[1] is JsonArray nodes
            ? new GroupResult(id, nodes.Where(n => n is JsonArray).Select(n => FromTuple(n!, backend, app)), backend)
            : new AsyncResult(id, backend);
        result.App = app;
        result.Parent = parent;
        return result;
    }
}
