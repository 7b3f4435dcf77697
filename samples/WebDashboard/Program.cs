// A web app that sends tasks, runs them in a worker it hosts, and shows what happens: health checks at /health and
// OpenTelemetry's traces and metrics on the console. On the embedded SQLite default (celeriac.db in the working
// folder), so `dotnet run --project samples/WebDashboard` is all it takes; CELERIAC_BROKER_URL picks another broker.
using System.Globalization;
using System.Text.Json;
using Celeriac;
using Celeriac.Results;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

WebApplicationBuilder builder = WebApplication.CreateBuilder(args);

// Loopback only, unless told otherwise (--urls or ASPNETCORE_URLS).
if (string.IsNullOrEmpty(builder.Configuration["urls"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:5080");
}

builder.Services
    .AddCeleriac()
    .AddTask("tasks.add", (long x, long y) => checked(x + y))
    .AddWorker();

builder.Services.AddHealthChecks().AddCeleriacHealthChecks();

// Console exporters print every span and, each OTEL_METRIC_EXPORT_INTERVAL (60 s unless set), the metrics. ASP.NET
// Core's own source is recorded too: the request is the root of its task's trace (POST /add -> apply_async -> run),
// and an unrecorded request would leave its task's spans unsampled.
builder.Services.AddOpenTelemetry()
    .WithTracing(tracing => tracing.AddSource("Microsoft.AspNetCore").AddCeleriacInstrumentation().AddConsoleExporter())
    .WithMetrics(metrics => metrics.AddCeleriacInstrumentation().AddConsoleExporter());

// The dashboard: pages, Flower's API and /metrics, its history in celeriac-dashboard.db.
builder.Services.AddCeleriacDashboard();

WebApplication app = builder.Build();

app.MapPost("/add", async (HttpRequest request, CeleriacApp celeriac, CancellationToken ct) =>
{
    if (!TryReadLong(request, "x", out long x, out IResult? error) || !TryReadLong(request, "y", out long y, out error))
    {
        return error;
    }

    AsyncResult sent = await celeriac.SendTaskAsync("tasks.add", [x, y], ct: ct);
    return Results.Accepted("/result/" + sent.Id, new { id = sent.Id });
});

app.MapGet("/result/{id}", async (string id, CeleriacApp celeriac, CancellationToken ct) =>
{
    if (!Guid.TryParse(id, out _))
    {
        return Results.BadRequest(new { error = $"'{id}' is not a task id (a uuid)" });
    }

    TaskResultMeta? meta = await celeriac.AsyncResult(id).RefreshAsync(ct);
    if (meta is null)
    {
        // As Celery: a task not (yet) known is PENDING.
        return Results.Ok(new { id, state = TaskStates.Pending, result = (object?)null });
    }

    return Results.Ok(new
    {
        id,
        state = meta.Status,
        result = meta.Status == TaskStates.Success ? (object?)meta.ResultElement : null,
        error = meta.Exception is { } e ? $"{e.Type}: {e.Message}" : null,
    });
});

app.MapHealthChecks("/health", new HealthCheckOptions { ResponseWriter = WriteHealthAsync });

app.MapCeleriacDashboard("/celeriac");

app.Run();

static bool TryReadLong(HttpRequest request, string name, out long value, out IResult? error)
{
    string? text = request.Query[name];
    if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out value))
    {
        error = null;
        return true;
    }

    error = Results.BadRequest(new { error = text is null ? $"query parameter '{name}' is required (an integer)" : $"query parameter '{name}' must be an integer, got '{text}'" });
    return false;
}

static Task WriteHealthAsync(HttpContext context, HealthReport report)
{
    context.Response.ContentType = "application/json";
    var body = new
    {
        status = report.Status.ToString(),
        checks = report.Entries.ToDictionary(
            e => e.Key,
            e => new { status = e.Value.Status.ToString(), description = e.Value.Description, duration_ms = e.Value.Duration.TotalMilliseconds }),
    };
    return context.Response.WriteAsync(JsonSerializer.Serialize(body));
}
