using System.Runtime.ExceptionServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Celeriac.Protocol;
using Celeriac.Results;
using Celeriac.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac;

/// <summary>
/// Celery's eager mode (<c>task_always_eager</c>, <c>Task.apply</c>): runs a call here and now and returns its result,
/// already stored. It lives in App, not in the worker, because a call must not need one: it binds the arguments with
/// the task's own invoker, runs a retry again at once with <c>retries</c> + 1 (the countdown is not waited, as in
/// Celery), and walks a canvas in order: a chain's steps one after the other with the previous value first, a group's
/// members one by one, a chord's body with its header's values, a signature's callbacks after it succeeds and its
/// error callbacks after it fails.
/// </summary>
internal sealed class EagerRunner(CeleriacApp app)
{
    private EagerResultBackend? _backend;

    /// <summary>Where eager results are kept (the app's own store, dropped with it).</summary>
    public IResultBackend Backend => _backend ??= new EagerResultBackend(new ResultBackendOptions
    {
        Url = new Uri("memory://celeriac-eager"),
        ResultExpires = null,
        TimeProvider = app.Time,
        LoggerFactory = app.LoggerFactory,
    });

    /// <summary>Whether a call of <paramref name="name"/> runs eagerly: eager mode is on and the task's code is here.</summary>
    public bool Runs(string name) =>
        app.Options.TaskAlwaysEager && app.Tasks.TryGet(name, out CeleriacTask? task) && task.CanRunHere;

    /// <summary>Runs one call of a registered task (Celery's <c>apply</c>).</summary>
    public Task<AsyncResult> RunAsync(string name, IReadOnlyList<object?>? args, IReadOnlyDictionary<string, object?>? kwargs, ApplyOptions? options, CancellationToken ct) =>
        RunAsync(name, args, kwargs, options, [], ct);

    /// <summary>Runs one call of a registered task; if it fails, <paramref name="errbacks"/> are called as Celery calls a task's <c>link_error</c>.</summary>
    private async Task<AsyncResult> RunAsync(string name, IReadOnlyList<object?>? args, IReadOnlyDictionary<string, object?>? kwargs, ApplyOptions? options, IReadOnlyList<Signature> errbacks, CancellationToken ct)
    {
        if (!app.Tasks.TryGet(name, out CeleriacTask? task) || !task.CanRunHere)
        {
            throw new InvalidOperationException($"Task '{name}' is not registered in this app, so eager mode (TaskAlwaysEager) cannot run it here; register it with app.Task(...) or [CeleriacTask].");
        }

        TransportMessage message = app.BuildMessage(name, args, kwargs, options, out string queue);
        AsyncResult result = await RunMessageAsync(task, message, queue, errbacks, ct).ConfigureAwait(false);
        TaskContext.Current?.AddChild(result);
        return result;
    }

    private async Task<AsyncResult> RunMessageAsync(CeleriacTask task, TransportMessage transport, string queue, IReadOnlyList<Signature> errbacks, CancellationToken ct)
    {
        // Bounded even for a task with no max_retries that always retries: eager mode must not spin forever in a test.
        for (int attempt = 0; ; attempt++)
        {
            if (!TaskMessage.TryDecode(transport, out TaskMessage? message, out _, out _, out string? error))
            {
                throw new InvalidOperationException($"Eager call of {task.Name} could not be read back: {error}");
            }

            using (message)
            {
                TaskHeaders h = message!.Headers;
                var context = new TaskContext(message, queue, "eager@" + Environment.MachineName, ct) { Definition = task, IsEager = true };

                // Current for the task's code and what it awaits (a task it sends is its child); this async method's
                // return gives the caller its own back.
                TaskContext.SetCurrent(context);
                CeleriacSignals signals = app.Signals;
                signals.OnTaskPrerun(app, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context });
                Exception failure;
                try
                {
                    object? value = await InvokeWithRetriesAsync(task, context).ConfigureAwait(false);
                    await StoreAsync(h, TaskStates.Success, TaskResultMeta.SerializeValue(value), null, context, ct).ConfigureAwait(false);
                    var done = new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context, State = TaskStates.Success, Result = value };
                    signals.OnTaskSuccess(app, done);
                    signals.OnTaskPostrun(app, done);
                    return Result(h.Id);
                }
                catch (RetryException retry) when (attempt < MaxEagerRetries)
                {
                    signals.OnTaskRetry(app, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context, Exception = retry.InnerException ?? retry, Reason = retry.Message });
                    signals.OnTaskPostrun(app, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context, State = TaskStates.Retry });
                    transport = TaskRetry.Build(message, app.Origin, null, app.Time.GetUtcNow());
                    continue;
                }
                catch (IgnoreException)
                {
                    // Celery's Ignore (a replaced task): nothing is stored for it.
                    return Result(h.Id);
                }
                catch (Exception ex)
                {
                    failure = ex;
                }

                ExceptionInfo info = failure is TaskArgumentException ? new ExceptionInfo("TypeError", failure.Message, "builtins") : ExceptionInfo.From(failure);
                byte[] exc = TaskResultMeta.SerializeException(info);
                await StoreAsync(h, TaskStates.Failure, exc, failure.ToString(), context, ct).ConfigureAwait(false);
                var failed = new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context, State = TaskStates.Failure, Exception = failure };
                signals.OnTaskFailure(app, failed);
                if (errbacks.Count > 0)
                {
                    // As Celery's eager trace: the error callbacks run with the failure stored, before it propagates. One
                    // that fails itself fails the call: in a test, a broken error callback should not pass unseen.
                    await InlineCalls.CallErrbacksAsync(app, [.. errbacks], InlineCalls.RequestJson(message, context.Hostname), exc, failure.ToString(), h.Id, h.RootId ?? h.Id, ct).ConfigureAwait(false);
                }

                signals.OnTaskPostrun(app, failed);
                if (app.Options.TaskEagerPropagates)
                {
                    ExceptionDispatchInfo.Throw(failure);
                }

                return Result(h.Id);
            }
        }
    }

    /// <summary>The most times one eager call runs again for its retries.</summary>
    private const int MaxEagerRetries = 1000;

    private AsyncResult Result(string id) => new(id, Backend) { App = app };

    private ValueTask StoreAsync(TaskHeaders h, string state, byte[] result, string? traceback, TaskContext context, CancellationToken ct) =>
        Backend.StoreAsync(
            new TaskResultMeta
            {
                TaskId = h.Id,
                Status = state,
                Result = result,
                Traceback = traceback,
                Children = context.ChildrenJson() ?? TaskResultMeta.NoChildren,
                DateDone = app.Time.GetUtcNow(),
                GroupId = h.Group,
                ParentId = h.ParentId,
            },
            ct);

    /// <summary>Runs the task's code (in a DI scope of its own when it needs one); a retry it asks for comes out as a <see cref="RetryException"/>.</summary>
    private async ValueTask<object?> InvokeWithRetriesAsync(CeleriacTask task, TaskContext context)
    {
        AsyncServiceScope? scope = task.Invoker!.NeedsServices && app.Options.Services is { } services ? services.CreateAsyncScope() : null;
        try
        {
            return await task.Invoker.InvokeAsync(context.Message, context, scope?.ServiceProvider ?? app.Options.Services).ConfigureAwait(false);
        }
        catch (RetryException retry) when (!retry.Sent)
        {
            throw await context.RetryAsync(retry.Reason, retry.Countdown, retry.Eta, retry.MaxRetries).ConfigureAwait(false);
        }
        catch (Exception ex) when (TaskRetry.IsAutoRetried(task.Options, ex) && !context.CancellationToken.IsCancellationRequested)
        {
            throw await context.RetryAsync(ex).ConfigureAwait(false);
        }
        finally
        {
            if (scope is { } s)
            {
                await s.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Celery's <c>Task.retry</c> when the request is eager: the same <c>max_retries</c> check, but nothing is sent; the
    /// eager run catches the exception and runs the task again.
    /// </summary>
    public static RetryException Retry(CeleriacTask task, TaskMessage message, Exception? reason, TimeSpan? countdown, DateTimeOffset? eta, int? maxRetries)
    {
        TaskHeaders h = message.Headers;
        if ((maxRetries ?? task.Options.MaxRetries) is { } max && h.Retries + 1 > max)
        {
            if (reason is not null)
            {
                ExceptionDispatchInfo.Throw(reason);
            }

            throw new MaxRetriesExceededException($"Can't retry {h.Task}[{h.Id}] args:{PythonRepr.OfTuple(message.Args)} kwargs:{PythonRepr.Of(message.Kwargs)}");
        }

        return new RetryException(reason, countdown, eta, maxRetries) { Sent = true };
    }

    // ---- canvas ----

    /// <summary>Runs a signature of any shape eagerly (Celery's <c>sig.apply()</c>) with partial arguments.</summary>
    public Task<AsyncResult> ApplyAsync(Signature sig, IEnumerable<object?>? args, IReadOnlyDictionary<string, object?>? kwargs, string? taskId, CancellationToken ct) =>
        ApplyAsync(
            sig,
            args is null ? null : new JsonArray([.. args.Select(Signature.ToNode)]),
            kwargs is null ? null : new JsonObject(kwargs.Select(kv => KeyValuePair.Create(kv.Key, Signature.ToNode(kv.Value)))),
            taskId,
            ct);

    private async Task<AsyncResult> ApplyAsync(Signature sig, JsonArray? args, JsonObject? kwargs, string? taskId, CancellationToken ct)
    {
        switch (sig)
        {
            case Chain chain:
                return await RunChainAsync(chain, args, kwargs, taskId, ct).ConfigureAwait(false);
            case Group group:
                return await RunGroupAsync(group, args, kwargs, taskId, ct).ConfigureAwait(false);
            case Chord chord:
                return await RunChordAsync(chord, args, kwargs, taskId, ct).ConfigureAwait(false);
            case Chunks chunks:
                return await RunGroupAsync(chunks.ToGroup(), args, kwargs, taskId, ct).ConfigureAwait(false);
            case MapSignature map:
                return await RunMapAsync(map, taskId, ct).ConfigureAwait(false);
            default:
                return await RunSignatureAsync(sig, args, kwargs, taskId, ct).ConfigureAwait(false);
        }
    }

    private async Task<AsyncResult> RunSignatureAsync(Signature sig, JsonArray? args, JsonObject? kwargs, string? taskId, CancellationToken ct)
    {
        Signature call = sig.Clone(args, kwargs?.ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal));
        object?[] a = [.. call.Args.Select(n => (object?)n)];
        Dictionary<string, object?> k = call.Kwargs.ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal);
        string? id = taskId ?? (call.Options["task_id"] is JsonValue v && v.TryGetValue(out string? given) ? given : null);
        AsyncResult result = await RunAsync(call.Task, a, k, new ApplyOptions { TaskId = id }, call.ErrorLinks, ct).ConfigureAwait(false);
        TaskResultMeta meta = await result.WaitAsync(null, ct).ConfigureAwait(false);
        if (meta.Status == TaskStates.Success)
        {
            // As Celery's callbacks: each link gets the result as its first argument (unless immutable).
            foreach (Signature link in call.Links)
            {
                await ApplyAsync(link, [ValueOf(meta)], null, null, ct).ConfigureAwait(false);
            }
        }

        return result;
    }

    private async Task<AsyncResult> RunChainAsync(Chain chain, JsonArray? args, JsonObject? kwargs, string? taskId, CancellationToken ct)
    {
        IReadOnlyList<Signature> steps = chain.UnchainTasks();
        if (chain.Immutable)
        {
            args = null;
            kwargs = null;
        }

        if (steps.Count == 0)
        {
            throw new InvalidOperationException("Cannot apply an empty chain");
        }

        AsyncResult? last = null;
        for (int i = 0; i < steps.Count; i++)
        {
            JsonArray? stepArgs = args;
            JsonObject? stepKwargs = kwargs;
            if (i > 0)
            {
                // As Celery's chain.apply: each step gets the previous one's value; a failure ends the chain there.
                TaskResultMeta previous = await last!.WaitAsync(null, ct).ConfigureAwait(false);
                if (previous.Status != TaskStates.Success)
                {
                    break;
                }

                stepArgs = [ValueOf(previous)];
                stepKwargs = null;
            }

            // As the canvas sends a chain: its error callbacks go on every step, its callbacks on the last one.
            Signature step = steps[i];
            if (chain.ErrorLinks.Count > 0 || (i == steps.Count - 1 && chain.Links.Count > 0))
            {
                step = step.Clone();
                foreach (Signature errback in chain.ErrorLinks)
                {
                    step.LinkError(errback);
                }

                foreach (Signature callback in i == steps.Count - 1 ? chain.Links : [])
                {
                    step.Link(callback);
                }
            }

            AsyncResult result = await ApplyAsync(step, stepArgs, stepKwargs, i == steps.Count - 1 ? taskId : null, ct).ConfigureAwait(false);
            result.Parent = last;
            last = result;
        }

        return last!;
    }

    private async Task<GroupResult> RunGroupAsync(Group group, JsonArray? args, JsonObject? kwargs, string? groupId, CancellationToken ct)
    {
        var results = new List<AsyncResult>(group.Tasks.Count);
        foreach (Signature member in group.Tasks)
        {
            results.Add(await ApplyAsync(member, (JsonArray?)args?.DeepClone(), (JsonObject?)kwargs?.DeepClone(), null, ct).ConfigureAwait(false));
        }

        string id = groupId ?? group.Id ?? Guid.NewGuid().ToString();
        await Backend.SaveGroupAsync(id, [.. results.Select(r => r.Id)], ct).ConfigureAwait(false);
        return new GroupResult(id, results, Backend) { App = app };
    }

    private async Task<AsyncResult> RunChordAsync(Chord chord, JsonArray? args, JsonObject? kwargs, string? taskId, CancellationToken ct)
    {
        GroupResult header = await RunGroupAsync(chord.Header, args, kwargs, null, ct).ConfigureAwait(false);
        if (chord.Body is not { } body)
        {
            return header;
        }

        // As Celery's chord.apply: the body gets the header's values as a list; a failed member fails the call.
        var values = new JsonArray();
        foreach (AsyncResult member in header.Results)
        {
            TaskResultMeta meta = await member.WaitAsync(null, ct).ConfigureAwait(false);
            if (meta.Status != TaskStates.Success)
            {
                throw new TaskFailedException(member.Id, meta.Status, meta.Exception ?? new ExceptionInfo("Exception", meta.Status, null), meta.Traceback);
            }

            values.Add(ValueOf(meta));
        }

        AsyncResult result = await ApplyAsync(body, new JsonArray((JsonNode)values), null, taskId, ct).ConfigureAwait(false);
        result.Parent = header;
        return result;
    }

    private async Task<AsyncResult> RunMapAsync(MapSignature map, string? taskId, CancellationToken ct)
    {
        // Celery's celery.map / celery.starmap: one task that calls the task with each item in turn, returning the list.
        var values = new JsonArray();
        foreach (JsonNode? item in map.Items)
        {
            JsonArray itemArgs = map is XStarMap && item is JsonArray list ? (JsonArray)list.DeepClone() : [item?.DeepClone()];
            AsyncResult one = await RunSignatureAsync(map.TaskSignature, itemArgs, null, null, ct).ConfigureAwait(false);
            TaskResultMeta meta = await one.WaitAsync(null, ct).ConfigureAwait(false);
            if (meta.Status != TaskStates.Success)
            {
                return one;
            }

            values.Add(ValueOf(meta));
        }

        string id = taskId ?? Guid.NewGuid().ToString();
        await Backend.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Success, Result = System.Text.Encoding.UTF8.GetBytes(values.ToJsonString()), DateDone = app.Time.GetUtcNow() }, ct).ConfigureAwait(false);
        return Result(id);
    }

    private static JsonNode? ValueOf(TaskResultMeta meta) => JsonNode.Parse(meta.Result.Span);
}
