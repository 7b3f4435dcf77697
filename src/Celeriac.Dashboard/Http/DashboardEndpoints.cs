using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Celeriac.Dashboard.Ingestion;
using Celeriac.Dashboard.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Celeriac.Dashboard.Http;

/// <summary>Maps the dashboard: pages, its own API, the live stream, Flower's API, <c>/metrics</c> and <c>/healthcheck</c>.</summary>
internal static class DashboardEndpoints
{
    private static readonly FileExtensionContentTypeProvider s_types = new();

    public static RouteGroupBuilder Map(IEndpointRouteBuilder endpoints, string prefix)
    {
        string p = "/" + (prefix ?? "").Trim('/');
        RouteGroupBuilder group = endpoints.MapGroup(p == "/" ? "" : p);
        group.AddEndpointFilter(GuardAsync);

        group.MapGet("/", (HttpContext ctx) => Index(ctx)).ExcludeFromDescription();
        group.MapGet("/static/{**file}", (string file) => Static(file));
        group.MapGet("/healthcheck", HealthAsync).WithMetadata(new AnonymousEndpoint());
        group.MapGet("/metrics", (FlowerMetrics metrics) => Microsoft.AspNetCore.Http.Results.Text(metrics.Render(), "text/plain; version=0.0.4; charset=utf-8", Encoding.UTF8));

        group.MapGet("/api/dashboard", Info);
        group.MapGet("/api/dashboard/workers", Workers);
        group.MapGet("/api/dashboard/tasks", TasksAsync);
        group.MapGet("/api/dashboard/task/{id}", TaskAsync);
        group.MapGet("/api/dashboard/queues", async (HttpContext ctx, QueueLengths queues) => HttpArgs.Json(QueueLengths.ToJson(await queues.CurrentAsync(ctx.RequestAborted).ConfigureAwait(false))));
        group.MapGet("/api/dashboard/stats", StatsAsync);
        group.MapGet("/api/dashboard/stream", StreamAsync);

        FlowerApi.Map(group);
        return group;
    }

    /// <summary>Marks an endpoint that answers without credentials (the health check, as Flower's).</summary>
    private sealed class AnonymousEndpoint;

    /// <summary>Basic auth on every endpoint but the health check, and read-only on every POST: both enforced here, not by the pages.</summary>
    private static async ValueTask<object?> GuardAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        HttpContext ctx = context.HttpContext;
        CeleriacDashboardOptions options = ctx.RequestServices.GetRequiredService<IOptions<CeleriacDashboardOptions>>().Value;
        bool anonymous = ctx.GetEndpoint()?.Metadata.GetMetadata<AnonymousEndpoint>() is not null;
        if (!anonymous && options.Credentials.Count > 0 && !Authorized(ctx.Request.Headers.Authorization.ToString(), options.Credentials))
        {
            ctx.Response.Headers.WWWAuthenticate = "Basic realm=\"celeriac\", charset=\"UTF-8\"";
            return HttpArgs.Error(StatusCodes.Status401Unauthorized, "authentication required");
        }

        if (options.ReadOnly && HttpMethods.IsPost(ctx.Request.Method))
        {
            return HttpArgs.Error(StatusCodes.Status403Forbidden, "read-only");
        }

        try
        {
            return await next(context).ConfigureAwait(false);
        }
        catch (BadRequestException ex)
        {
            return HttpArgs.Error(StatusCodes.Status400BadRequest, ex.Message);
        }
        catch (FormatException ex)
        {
            return HttpArgs.Error(StatusCodes.Status400BadRequest, ex.Message);
        }
        catch (ArgumentException ex)
        {
            return HttpArgs.Error(StatusCodes.Status400BadRequest, ex.Message);
        }
    }

    /// <summary>Whether a Basic header names one of the pairs; every pair is compared in constant time (as hashes, so lengths leak nothing).</summary>
    internal static bool Authorized(string header, IReadOnlyList<string> credentials)
    {
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        byte[] given;
        try
        {
            given = SHA256.HashData(Convert.FromBase64String(header["Basic ".Length..].Trim()));
        }
        catch (FormatException)
        {
            return false;
        }

        bool ok = false;
        foreach (string pair in credentials)
        {
            ok |= CryptographicOperations.FixedTimeEquals(given, SHA256.HashData(Encoding.UTF8.GetBytes(pair)));
        }

        return ok;
    }

    private static IResult Index(HttpContext ctx)
    {
        // "P" without its slash would resolve the page's relative "static/app.js" against the parent: send it to "P/".
        if (!ctx.Request.Path.Value!.EndsWith('/') && !(ctx.Request.PathBase.HasValue && ctx.Request.Path.Value.Length == 0))
        {
            return Microsoft.AspNetCore.Http.Results.Redirect(ctx.Request.PathBase + ctx.Request.Path + "/" + ctx.Request.QueryString);
        }

        return Static("index.html");
    }

    private static IResult Static(string file)
    {
        if (file.Contains("..", StringComparison.Ordinal))
        {
            return HttpArgs.Error(StatusCodes.Status404NotFound, $"no file '{file}'");
        }

        Stream? stream = typeof(DashboardEndpoints).Assembly.GetManifestResourceStream("wwwroot/" + file);
        if (stream is null)
        {
            return HttpArgs.Error(StatusCodes.Status404NotFound, $"no file '{file}'");
        }

        string type = s_types.TryGetContentType(file, out string? t) ? t : "application/octet-stream";
        if (type.StartsWith("text/", StringComparison.Ordinal) || type.EndsWith("javascript", StringComparison.Ordinal))
        {
            type += "; charset=utf-8";
        }

        return Microsoft.AspNetCore.Http.Results.Stream(stream, type);
    }

    private static async Task<IResult> HealthAsync(CeleriacApp app, HttpContext ctx)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            await app.Transport.GetQueueLengthAsync(app.Options.DefaultQueue, timeout.Token).ConfigureAwait(false);
            return Microsoft.AspNetCore.Http.Results.Text("OK", "text/plain; charset=utf-8", Encoding.UTF8);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ctx.RequestAborted.IsCancellationRequested)
        {
            return Microsoft.AspNetCore.Http.Results.Text("broker unreachable: " + ex.GetType().Name, "text/plain; charset=utf-8", Encoding.UTF8, StatusCodes.Status503ServiceUnavailable);
        }
    }

    private static IResult Info(CeleriacApp app, IOptions<CeleriacDashboardOptions> options)
    {
        Version v = typeof(DashboardEndpoints).Assembly.GetName().Version ?? new Version(0, 0, 0);
        return HttpArgs.Json(new JsonObject
        {
            ["read_only"] = options.Value.ReadOnly,
            ["version"] = $"{v.Major}.{v.Minor}.{v.Build}",
            ["broker"] = UrlText.Mask(app.Options.BrokerUrl),
            ["auth"] = options.Value.Credentials.Count > 0,
        });
    }

    private static IResult Workers(DashboardIngestor ingestor, TimeProvider time)
    {
        double now = time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
        return HttpArgs.Json(new JsonArray([.. ingestor.Workers.Select(w => (JsonNode)FlowerJson.WorkerRow(w, now))]));
    }

    internal static async Task<TaskQuery> ParseQueryAsync(HttpContext ctx, int defaultLimit, int maxLimit)
    {
        int limit = await HttpArgs.IntAsync(ctx, "limit").ConfigureAwait(false) ?? defaultLimit;
        int offset = await HttpArgs.IntAsync(ctx, "offset").ConfigureAwait(false) ?? 0;
        if (limit < 0 || offset < 0)
        {
            throw new BadRequestException("limit and offset must not be negative");
        }

        static string? All(string? v) => v is null or "" or "All" ? null : v;
        var query = new TaskQuery
        {
            Search = await HttpArgs.GetAsync(ctx, "search").ConfigureAwait(false) is { Length: > 0 } s ? TaskSearch.Parse(s) : null,
            Name = All(await HttpArgs.GetAsync(ctx, "taskname").ConfigureAwait(false)),
            Worker = All(await HttpArgs.GetAsync(ctx, "workername").ConfigureAwait(false)),
            State = All(await HttpArgs.GetAsync(ctx, "state").ConfigureAwait(false)),
            ReceivedStart = await HttpArgs.TimeAsync(ctx, "received_start").ConfigureAwait(false),
            ReceivedEnd = await HttpArgs.TimeAsync(ctx, "received_end").ConfigureAwait(false),
            SortBy = await HttpArgs.GetAsync(ctx, "sort_by").ConfigureAwait(false) is { Length: > 0 } sort ? sort : null,
            Offset = offset,
            Limit = Math.Min(limit, maxLimit),
        };
        query.Sort();
        return query;
    }

    private static async Task<IResult> TasksAsync(HttpContext ctx, IDashboardStore store)
    {
        TaskQuery query = await ParseQueryAsync(ctx, 50, 1_000).ConfigureAwait(false);
        TaskPage page = await store.QueryTasksAsync(query, ctx.RequestAborted).ConfigureAwait(false);
        return HttpArgs.Json(new JsonObject
        {
            ["total"] = page.Total,
            ["tasks"] = new JsonArray([.. page.Tasks.Select(t => (JsonNode)FlowerJson.Task(t))]),
        });
    }

    private static async Task<IResult> TaskAsync(string id, HttpContext ctx, IDashboardStore store)
    {
        CancellationToken ct = ctx.RequestAborted;
        if (await store.GetTaskAsync(id, ct).ConfigureAwait(false) is not { } task)
        {
            return HttpArgs.Error(StatusCodes.Status404NotFound, $"Unknown task '{id}'");
        }

        var events = new JsonArray();
        foreach (TaskEventRecord e in await store.GetEventsAsync(id, 1000, ct).ConfigureAwait(false))
        {
            events.Add(new JsonObject
            {
                ["type"] = e.Type,
                ["timestamp"] = e.Timestamp,
                ["hostname"] = e.Hostname,
                ["fields"] = JsonNode.Parse(e.FieldsJson),
            });
        }

        TaskPage children = await store.QueryTasksAsync(new TaskQuery { ParentId = id, Limit = 1000, SortBy = "timestamp" }, ct).ConfigureAwait(false);
        TaskPage retries = await store.QueryTasksAsync(new TaskQuery { RetryOf = id, Limit = 1000, SortBy = "timestamp" }, ct).ConfigureAwait(false);
        return HttpArgs.Json(new JsonObject
        {
            ["task"] = FlowerJson.Task(task),
            ["events"] = events,
            ["children"] = new JsonArray([.. children.Tasks.Select(t => (JsonNode?)JsonValue.Create(t.Uuid))]),
            ["retried_as"] = new JsonArray([.. retries.Tasks.Select(t => (JsonNode?)JsonValue.Create(t.Uuid))]),
            ["retry_of"] = task.RetryOf,
        });
    }

    private static async Task<IResult> StatsAsync(HttpContext ctx, IDashboardStore store, QueueLengths queues, TimeProvider time)
    {
        int minutes = await HttpArgs.IntAsync(ctx, "minutes").ConfigureAwait(false) ?? 60;
        if (minutes is < 1 or > 7 * 24 * 60)
        {
            throw new BadRequestException("minutes must be between 1 and 10080");
        }

        double since = (time.GetUtcNow() - TimeSpan.FromMinutes(minutes)).ToUnixTimeMilliseconds() / 1000.0;
        DashboardStats stats = await store.GetStatsAsync(since, ctx.RequestAborted).ConfigureAwait(false);
        var throughput = new JsonArray();
        foreach (IGrouping<long, ThroughputPoint> minute in stats.Throughput.GroupBy(p => p.Minute))
        {
            var row = new JsonObject { ["t"] = minute.Key };
            foreach (string state in (string[])["SUCCESS", "FAILURE", "RETRY", "REVOKED", "RECEIVED"])
            {
                row[state] = minute.Where(p => p.State == state).Sum(p => p.Count);
            }

            throughput.Add(row);
        }

        return HttpArgs.Json(new JsonObject
        {
            ["throughput"] = throughput,
            ["runtimes"] = new JsonArray([.. stats.Runtimes.Select(r => (JsonNode)new JsonObject
            {
                ["task"] = r.Task, ["count"] = r.Count, ["p50"] = r.P50, ["p90"] = r.P90, ["p99"] = r.P99,
            })]),
            ["queues"] = new JsonArray([.. queues.History.Where(h => h.T >= since).Select(h => (JsonNode)new JsonObject
            {
                ["t"] = h.T, ["name"] = h.Name, ["messages"] = h.Messages,
            })]),
        });
    }

    /// <summary>Server-sent events: <c>task</c> and <c>worker</c> changes as they are stored, and a ping comment every 15 s.</summary>
    private static async Task StreamAsync(HttpContext ctx, DashboardLive live, ILoggerFactory loggers)
    {
        CancellationToken ct = ctx.RequestAborted;
        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        ctx.Response.Headers.ContentType = "text/event-stream; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
        using DashboardLive.Subscription subscription = live.Subscribe();
        try
        {
            await ctx.Response.WriteAsync(": connected\n\n", ct).ConfigureAwait(false);
            await ctx.Response.Body.FlushAsync(ct).ConfigureAwait(false);
            while (!ct.IsCancellationRequested)
            {
                using var ping = CancellationTokenSource.CreateLinkedTokenSource(ct);
                ping.CancelAfter(TimeSpan.FromSeconds(15));
                bool more;
                try
                {
                    more = await subscription.Reader.WaitToReadAsync(ping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    await ctx.Response.WriteAsync(": ping\n\n", ct).ConfigureAwait(false);
                    await ctx.Response.Body.FlushAsync(ct).ConfigureAwait(false);
                    continue;
                }

                if (!more)
                {
                    return;
                }

                var sb = new StringBuilder();
                while (subscription.Reader.TryRead(out LiveMessage? m))
                {
                    sb.Append("event: ").Append(m.Kind).Append("\ndata: ").Append(m.Json).Append("\n\n");
                }

                await ctx.Response.WriteAsync(sb.ToString(), ct).ConfigureAwait(false);
                await ctx.Response.Body.FlushAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The page went away.
        }
        catch (IOException ex)
        {
            loggers.CreateLogger("Celeriac.Dashboard").LogDebug(ex, "A live stream ended");
        }
    }
}
