using System.Globalization;
using System.Text.Json.Nodes;
using Celeriac.Control;
using Celeriac.Dashboard.Ingestion;
using Celeriac.Dashboard.Store;
using Celeriac.Protocol;
using Celeriac.Results;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Celeriac.Dashboard.Http;

/// <summary>
/// Flower's HTTP API (<c>flower/api/*.py</c>) at Flower's paths with Flower's JSON shapes, so that scripts written for
/// Flower work, plus the dashboard's retry actions. Errors are Flower's statuses (400, 404; 403 when a worker refused)
/// with <c>{"error": message}</c>.
/// </summary>
internal static class FlowerApi
{
    public static void Map(RouteGroupBuilder g)
    {
        g.MapGet("/api/workers", WorkersAsync);
        g.MapGet("/api/tasks", TasksAsync);
        g.MapGet("/api/task/types", async (IDashboardStore store, HttpContext ctx) =>
            HttpArgs.Json(new JsonObject { ["task-types"] = Strings(await store.GetTaskNamesAsync(ctx.RequestAborted).ConfigureAwait(false)) }));
        g.MapGet("/api/task/info/{id}", InfoAsync);
        g.MapGet("/api/task/result/{id}", ResultAsync);
        g.MapGet("/api/queues/length", async (QueueLengths queues, HttpContext ctx) => HttpArgs.Json(new JsonObject
        {
            ["active_queues"] = new JsonArray([.. (await queues.CurrentAsync(ctx.RequestAborted).ConfigureAwait(false))
                .Select(q => (JsonNode)new JsonObject { ["name"] = q.Name, ["messages"] = q.Messages ?? 0 })]),
        }));

        g.MapPost("/api/task/apply/{name}", (string name, HttpContext ctx, CeleriacApp app, IDashboardStore store, WorkerInspections inspections) =>
            SendAsync(name, ctx, app, store, inspections, known: true, wait: true));
        g.MapPost("/api/task/async-apply/{name}", (string name, HttpContext ctx, CeleriacApp app, IDashboardStore store, WorkerInspections inspections) =>
            SendAsync(name, ctx, app, store, inspections, known: true, wait: false));
        g.MapPost("/api/task/send-task/{name}", (string name, HttpContext ctx, CeleriacApp app, IDashboardStore store, WorkerInspections inspections) =>
            SendAsync(name, ctx, app, store, inspections, known: false, wait: false));
        g.MapPost("/api/task/revoke/{id}", RevokeAsync);
        g.MapPost("/api/task/rate-limit/{name}", RateLimitAsync);
        g.MapPost("/api/task/timeout/{name}", TimeLimitAsync);
        g.MapPost("/api/task/retry/{id}", RetryOneAsync);
        g.MapPost("/api/tasks/retry", RetryManyAsync);

        g.MapPost("/api/worker/shutdown/{w}", (string w, HttpContext ctx, Deps d) =>
            ControlAsync(w, ctx, d, o => d.Control.ShutdownAsync(o with { Reply = false }, ctx.RequestAborted), _ => "Shutting down!", "shut down", reply: false));
        g.MapPost("/api/worker/pool/restart/{w}", (string w, HttpContext ctx, Deps d) =>
            ControlAsync(w, ctx, d, o => d.Control.PoolRestartAsync(o, ctx.RequestAborted), _ => $"Restarting '{w}' worker's pool", $"Failed to restart the '{w}' pool"));
        g.MapPost("/api/worker/pool/grow/{w}", async (string w, HttpContext ctx, Deps d) =>
        {
            int n = await HttpArgs.IntAsync(ctx, "n").ConfigureAwait(false) ?? 1;
            return await ControlAsync(w, ctx, d, o => d.Control.PoolGrowAsync(n, o, ctx.RequestAborted), _ => $"Growing '{w}' worker's pool by {n}", $"Failed to grow '{w}' worker's pool").ConfigureAwait(false);
        });
        g.MapPost("/api/worker/pool/shrink/{w}", async (string w, HttpContext ctx, Deps d) =>
        {
            int n = await HttpArgs.IntAsync(ctx, "n").ConfigureAwait(false) ?? 1;
            return await ControlAsync(w, ctx, d, o => d.Control.PoolShrinkAsync(n, o, ctx.RequestAborted), _ => $"Shrinking '{w}' worker's pool by {n}", $"Failed to shrink '{w}' worker's pool").ConfigureAwait(false);
        });
        g.MapPost("/api/worker/pool/autoscale/{w}", async (string w, HttpContext ctx, Deps d) =>
        {
            int min = await HttpArgs.IntAsync(ctx, "min").ConfigureAwait(false) ?? throw new BadRequestException("Missing argument min");
            int max = await HttpArgs.IntAsync(ctx, "max").ConfigureAwait(false) ?? throw new BadRequestException("Missing argument max");
            return await ControlAsync(w, ctx, d, o => d.Control.AutoscaleAsync(max, min, o, ctx.RequestAborted), _ => $"Autoscaling '{w}' worker (min={min}, max={max})", $"Failed to autoscale '{w}' worker").ConfigureAwait(false);
        });
        g.MapPost("/api/worker/queue/add-consumer/{w}", async (string w, HttpContext ctx, Deps d) =>
        {
            string queue = await HttpArgs.RequiredAsync(ctx, "queue").ConfigureAwait(false);
            return await ControlAsync(w, ctx, d, o => d.Control.AddConsumerAsync(queue, options: o, ct: ctx.RequestAborted), r => r.Ok ?? "", $"Failed to add '{queue}' consumer to '{w}' worker").ConfigureAwait(false);
        });
        g.MapPost("/api/worker/queue/cancel-consumer/{w}", async (string w, HttpContext ctx, Deps d) =>
        {
            string queue = await HttpArgs.RequiredAsync(ctx, "queue").ConfigureAwait(false);
            return await ControlAsync(w, ctx, d, o => d.Control.CancelConsumerAsync(queue, o, ctx.RequestAborted), r => r.Ok ?? "", $"Failed to cancel '{queue}' consumer from '{w}' worker").ConfigureAwait(false);
        });
    }

    private static JsonArray Strings(IEnumerable<string> values) => new([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]);

    /// <summary>What the control endpoints need, resolved once per request.</summary>
    internal sealed class Deps(CeleriacApp app, DashboardIngestor ingestor, WorkerInspections inspections, IOptions<CeleriacDashboardOptions> options)
    {
        public ControlClient Control { get; } = ControlClient.For(app);

        public DashboardIngestor Ingestor => ingestor;

        public WorkerInspections Inspections => inspections;

        public TimeSpan Timeout => options.Value.ControlTimeout;

        public bool IsWorker(string name) => ingestor.GetWorker(name) is not null || inspections.Workers.ContainsKey(name);
    }

    private static async Task<IResult> ControlAsync(string worker, HttpContext ctx, Deps d, Func<ControlOptions, Task<IReadOnlyList<ControlReply>>> call,
        Func<ControlReply, string> ok, string failure, bool reply = true)
    {
        if (!d.IsWorker(worker))
        {
            return HttpArgs.Error(StatusCodes.Status404NotFound, $"Unknown worker '{worker}'");
        }

        IReadOnlyList<ControlReply> replies = await call(new ControlOptions { Destination = [worker], Reply = reply, Timeout = d.Timeout, Limit = 1 }).ConfigureAwait(false);
        if (!reply)
        {
            return HttpArgs.Json(new JsonObject { ["message"] = ok(new ControlReply(worker, default)) });
        }

        ControlReply? answer = replies.FirstOrDefault(r => r.Node == worker);
        return answer is { Error: null, Ok: not null }
            ? HttpArgs.Json(new JsonObject { ["message"] = ok(answer) })
            : HttpArgs.Error(StatusCodes.Status403Forbidden, $"{failure}: {answer?.Error ?? "no reply"}");
    }

    private static async Task<IResult> WorkersAsync(HttpContext ctx, DashboardIngestor ingestor, WorkerInspections inspections, TimeProvider time)
    {
        bool refresh = await HttpArgs.BoolAsync(ctx, "refresh").ConfigureAwait(false);
        bool status = await HttpArgs.BoolAsync(ctx, "status").ConfigureAwait(false);
        string? workername = await HttpArgs.GetAsync(ctx, "workername").ConfigureAwait(false) is { Length: > 0 } w ? w : null;
        if (refresh)
        {
            await ingestor.RefreshInspectionsAsync(workername, ctx.RequestAborted).ConfigureAwait(false);
        }

        double now = time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
        if (workername is not null && ingestor.GetWorker(workername) is null && !inspections.Workers.ContainsKey(workername))
        {
            return HttpArgs.Error(StatusCodes.Status404NotFound, $"Unknown worker '{workername}'");
        }

        var names = new SortedSet<string>(StringComparer.Ordinal);
        names.UnionWith(inspections.Workers.Keys);
        names.UnionWith(ingestor.Workers.Select(x => x.Hostname));
        var result = new JsonObject();
        foreach (string name in names.Where(n => workername is null || n == workername))
        {
            if (status)
            {
                result[name] = ingestor.GetWorker(name)?.IsOnline(now) ?? false;
                continue;
            }

            var info = new JsonObject();
            if (inspections.Workers.TryGetValue(name, out WorkerInspection? i))
            {
                foreach (string method in WorkerInspections.Methods)
                {
                    if (i.Replies.TryGetValue(method, out JsonNode? value))
                    {
                        info[method] = value?.DeepClone();
                    }
                }

                info["timestamp"] = i.Timestamp;
            }

            result[name] = info;
        }

        return HttpArgs.Json(result);
    }

    private static async Task<IResult> TasksAsync(HttpContext ctx, IDashboardStore store)
    {
        // Flower returns every task it holds when no limit is given; the store holds more, so an unbounded list is capped.
        TaskQuery query = await DashboardEndpoints.ParseQueryAsync(ctx, 10_000, 10_000).ConfigureAwait(false);
        TaskPage page = await store.QueryTasksAsync(query, ctx.RequestAborted).ConfigureAwait(false);
        var result = new JsonObject();
        foreach (DashboardTask t in page.Tasks)
        {
            result[t.Uuid] = FlowerJson.Task(t);
        }

        return HttpArgs.Json(result);
    }

    private static async Task<IResult> InfoAsync(string id, HttpContext ctx, IDashboardStore store)
    {
        if (await store.GetTaskAsync(id, ctx.RequestAborted).ConfigureAwait(false) is not { } task)
        {
            return HttpArgs.Error(StatusCodes.Status404NotFound, $"Unknown task '{id}'");
        }

        JsonObject info = FlowerJson.Task(task);
        info["task-id"] = task.Uuid;
        return HttpArgs.Json(info);
    }

    private static async Task<IResult> ResultAsync(string id, HttpContext ctx, CeleriacApp app)
    {
        double? timeout = await HttpArgs.DoubleAsync(ctx, "timeout").ConfigureAwait(false);
        if (app.ResultBackend is DisabledResultBackend)
        {
            return HttpArgs.Error(StatusCodes.Status503ServiceUnavailable, "no result backend is configured");
        }

        AsyncResult result = app.AsyncResult(id);
        TaskResultMeta? meta;
        if (timeout is { } seconds and > 0)
        {
            try
            {
                meta = await result.WaitAsync(TimeSpan.FromSeconds(Math.Min(seconds, 300)), ctx.RequestAborted).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                meta = await result.RefreshAsync(ctx.RequestAborted).ConfigureAwait(false);
            }
        }
        else
        {
            meta = await result.RefreshAsync(ctx.RequestAborted).ConfigureAwait(false);
        }

        return HttpArgs.Json(ResultJson(id, meta));
    }

    private static JsonObject ResultJson(string id, TaskResultMeta? meta)
    {
        var response = new JsonObject { ["task-id"] = id, ["state"] = meta?.Status ?? TaskStates.Pending };
        if (meta is null)
        {
            response["result"] = null;
        }
        else if (meta.Exception is { } error)
        {
            response["result"] = $"{error.Type}('{error.Message.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal)}')";
            if (meta.Status == TaskStates.Failure)
            {
                response["traceback"] = meta.Traceback;
            }
        }
        else
        {
            response["result"] = meta.Result.IsEmpty ? null : JsonNode.Parse(meta.Result.Span);
        }

        return response;
    }

    private static async Task<IResult> SendAsync(string name, HttpContext ctx, CeleriacApp app, IDashboardStore store, WorkerInspections inspections, bool known, bool wait)
    {
        (List<object?> args, Dictionary<string, object?> kwargs, ApplyOptions options) = await ReadBodyAsync(ctx).ConfigureAwait(false);
        if (known && !await IsKnownTaskAsync(name, app, store, inspections, ctx.RequestAborted).ConfigureAwait(false))
        {
            return HttpArgs.Error(StatusCodes.Status404NotFound, $"Unknown task '{name}'");
        }

        AsyncResult result = await app.SendTaskAsync(name, args, kwargs, options, ctx.RequestAborted).ConfigureAwait(false);
        if (!wait)
        {
            return HttpArgs.Json(new JsonObject { ["task-id"] = result.Id, ["state"] = TaskStates.Pending });
        }

        TaskResultMeta meta = await result.WaitAsync(null, ctx.RequestAborted).ConfigureAwait(false);
        return HttpArgs.Json(ResultJson(result.Id, meta));
    }

    /// <summary>
    /// Flower looks the name up in its app; a standalone dashboard's app has no tasks, so the names the workers registered
    /// (asked again when not found) and the names seen in events count too.
    /// </summary>
    private static async Task<bool> IsKnownTaskAsync(string name, CeleriacApp app, IDashboardStore store, WorkerInspections inspections, CancellationToken ct)
    {
        bool Registered() => inspections.Workers.Values.Any(i => i.Replies.GetValueOrDefault("registered") is JsonArray r
            && r.Any(n => n?.GetValueKind() == System.Text.Json.JsonValueKind.String && (n.GetValue<string>() == name || n.GetValue<string>().StartsWith(name + " ", StringComparison.Ordinal))));
        if (app.Tasks.TryGet(name, out _) || Registered() || (await store.GetTaskNamesAsync(ct).ConfigureAwait(false)).Contains(name))
        {
            return true;
        }

        await inspections.RefreshAsync(null, ct).ConfigureAwait(false);
        return Registered();
    }

    /// <summary>Flower's <c>get_task_args</c> and <c>normalize_options</c>: a JSON object with args, kwargs and apply_async's options.</summary>
    private static async Task<(List<object?> Args, Dictionary<string, object?> Kwargs, ApplyOptions Options)> ReadBodyAsync(HttpContext ctx)
    {
        using var buffer = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(buffer, ctx.RequestAborted).ConfigureAwait(false);
        if (buffer.Length == 0)
        {
            return ([], [], new ApplyOptions());
        }

        object? body;
        try
        {
            body = JsonValues.Parse(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new BadRequestException("the body is not JSON: " + ex.Message);
        }

        if (body is not Dictionary<string, object?> options)
        {
            throw new BadRequestException("invalid options");
        }

        List<object?> args = options.Remove("args", out object? a) ? a as List<object?> ?? (a is null ? [] : throw new BadRequestException("args must be an array")) : [];
        Dictionary<string, object?> kwargs = options.Remove("kwargs", out object? k) ? k as Dictionary<string, object?> ?? (k is null ? [] : throw new BadRequestException("kwargs must be an object")) : [];
        var apply = new ApplyOptions();
        foreach ((string key, object? value) in options)
        {
            apply = key switch
            {
                "countdown" => apply with { Countdown = TimeSpan.FromSeconds(Number(key, value)) },
                "eta" => apply with { Eta = Date(key, value) },
                "expires" => value is string ? apply with { Expires = Date(key, value) } : apply with { ExpiresIn = TimeSpan.FromSeconds(Number(key, value)) },
                "queue" => apply with { Queue = value as string ?? throw new BadRequestException("queue must be a string") },
                "priority" => apply with { Priority = (int)Number(key, value) },
                "task_id" => apply with { TaskId = value as string ?? throw new BadRequestException("task_id must be a string") },
                "ignore_result" => apply with { IgnoreResult = value is true },
                "headers" => apply with { Headers = value as Dictionary<string, object?> ?? throw new BadRequestException("headers must be an object") },
                _ => throw new BadRequestException($"Invalid option '{key}'"),
            };
        }

        return (args, kwargs, apply);
    }

    private static double Number(string key, object? value) => value switch
    {
        long l => l,
        double d when double.IsFinite(d) => d,
        string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
        _ => throw new BadRequestException($"{key} must be a number"),
    };

    private static DateTimeOffset Date(string key, object? value) =>
        value is string s && DateTimeOffset.TryParseExact(s, ["yyyy-MM-dd HH:mm:ss.ffffff", "yyyy-MM-dd HH:mm:ss", "o", "yyyy-MM-ddTHH:mm:ss.ffffffzzz", "yyyy-MM-ddTHH:mm:sszzz"],
            CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out DateTimeOffset at)
            ? at
            : throw new BadRequestException($"{key} must be a date as '%Y-%m-%d %H:%M:%S.%f'");

    private static async Task<IResult> RevokeAsync(string id, HttpContext ctx, CeleriacApp app)
    {
        bool terminate = await HttpArgs.BoolAsync(ctx, "terminate").ConfigureAwait(false);
        string signal = await HttpArgs.GetAsync(ctx, "signal").ConfigureAwait(false) is { Length: > 0 } s ? s : "SIGTERM";
        await ControlClient.For(app).RevokeAsync([id], terminate, signal, ct: ctx.RequestAborted).ConfigureAwait(false);
        return HttpArgs.Json(new JsonObject { ["message"] = $"Revoked '{id}'" });
    }

    private static async Task<IResult> RateLimitAsync(string name, HttpContext ctx, Deps d)
    {
        string worker = await HttpArgs.RequiredAsync(ctx, "workername").ConfigureAwait(false);
        string rate = await HttpArgs.RequiredAsync(ctx, "ratelimit").ConfigureAwait(false);
        return await ControlAsync(worker, ctx, d, o => d.Control.RateLimitAsync(name, rate, o, ctx.RequestAborted), r => r.Ok ?? "", "Failed to set rate limit").ConfigureAwait(false);
    }

    private static async Task<IResult> TimeLimitAsync(string name, HttpContext ctx, Deps d)
    {
        string worker = await HttpArgs.RequiredAsync(ctx, "workername").ConfigureAwait(false);
        double? soft = await HttpArgs.DoubleAsync(ctx, "soft").ConfigureAwait(false);
        double? hard = await HttpArgs.DoubleAsync(ctx, "hard").ConfigureAwait(false);
        return await ControlAsync(worker, ctx, d, o => d.Control.TimeLimitAsync(name, soft, hard, o, ctx.RequestAborted), r => r.Ok ?? "", "Failed to set timeouts").ConfigureAwait(false);
    }

    private static async Task<IResult> RetryOneAsync(string id, HttpContext ctx, CeleriacApp app, IDashboardStore store, DashboardIngestor ingestor)
    {
        if (await store.GetTaskAsync(id, ctx.RequestAborted).ConfigureAwait(false) is not { } task)
        {
            return HttpArgs.Error(StatusCodes.Status404NotFound, $"Unknown task '{id}'");
        }

        string newId = await Retry.SendAsync(app, ingestor, task, ctx.RequestAborted).ConfigureAwait(false);
        return HttpArgs.Json(new JsonObject { ["task-id"] = newId, ["retry_of"] = id });
    }

    private static async Task<IResult> RetryManyAsync(HttpContext ctx, CeleriacApp app, IDashboardStore store, DashboardIngestor ingestor)
    {
        string? search = await HttpArgs.GetAsync(ctx, "search").ConfigureAwait(false);
        TaskPage failed = await store.QueryTasksAsync(new TaskQuery
        {
            Search = string.IsNullOrWhiteSpace(search) ? null : TaskSearch.Parse(search),
            State = TaskStates.Failure,
            Limit = Retry.MaxPerCall,
            SortBy = "timestamp",
        }, ctx.RequestAborted).ConfigureAwait(false);
        var retried = new JsonArray();
        foreach (DashboardTask task in failed.Tasks)
        {
            // A task already re-sent from the dashboard is not re-sent again by "retry all".
            if ((await store.QueryTasksAsync(new TaskQuery { RetryOf = task.Uuid, Limit = 1 }, ctx.RequestAborted).ConfigureAwait(false)).Total > 0)
            {
                continue;
            }

            try
            {
                string newId = await Retry.SendAsync(app, ingestor, task, ctx.RequestAborted).ConfigureAwait(false);
                retried.Add(new JsonObject { ["retry_of"] = task.Uuid, ["task-id"] = newId });
            }
            catch (BadRequestException)
            {
                // Arguments not recoverable from its events: left out, as the single retry would refuse it.
            }
        }

        return HttpArgs.Json(new JsonObject { ["retried"] = retried });
    }
}
