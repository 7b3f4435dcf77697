using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Celeriac.Control;
using Microsoft.Extensions.Options;

namespace Celeriac.Dashboard.Ingestion;

/// <summary>What <c>inspect</c> told about one worker (Flower's <c>/api/workers</c> entry), each as the worker sent it.</summary>
public sealed class WorkerInspection
{
    /// <summary>Each inspect method's reply by method name (<c>stats</c>, <c>registered</c>, <c>active_queues</c>, ...).</summary>
    public ConcurrentDictionary<string, JsonNode?> Replies { get; } = new(StringComparer.Ordinal);

    /// <summary>When it was last asked, in seconds since the Unix epoch.</summary>
    public double Timestamp { get; set; }

    /// <summary>The pool's size, from <c>stats.pool.max-concurrency</c>.</summary>
    public int? PoolSize => Replies.GetValueOrDefault("stats") is JsonObject stats && stats["pool"] is JsonObject pool
        && pool["max-concurrency"] is JsonValue v && v.TryGetValue(out int n) ? n : null;

    /// <summary>The queues it consumes, from <c>active_queues</c>.</summary>
    public IReadOnlyList<string>? QueueNames => Replies.GetValueOrDefault("active_queues") is JsonArray queues
        ? [.. queues.OfType<JsonObject>().Select(q => q["name"]?.GetValue<string>()).OfType<string>()]
        : null;
}

/// <summary>Asks workers Flower's inspect methods and keeps the latest replies, bounded by <see cref="CeleriacDashboardOptions.MaxWorkers"/>.</summary>
public sealed class WorkerInspections(CeleriacApp app, IOptions<CeleriacDashboardOptions> options, TimeProvider time)
{
    /// <summary>Flower's <c>update_workers</c> methods.</summary>
    public static readonly IReadOnlyList<string> Methods = ["stats", "active_queues", "registered", "scheduled", "active", "reserved", "revoked", "conf"];

    private readonly ConcurrentDictionary<string, WorkerInspection> _workers = new(StringComparer.Ordinal);

    /// <summary>The latest replies, by worker.</summary>
    public IReadOnlyDictionary<string, WorkerInspection> Workers => _workers;

    /// <summary>Asks every worker (or one) every method at once, waiting <see cref="CeleriacDashboardOptions.ControlTimeout"/>.</summary>
    public async Task<IReadOnlyDictionary<string, WorkerInspection>> RefreshAsync(string? workername, CancellationToken ct = default)
    {
        var control = ControlClient.For(app);
        var inspector = control.Inspect(new ControlOptions
        {
            Destination = workername is null ? null : [workername],
            Timeout = options.Value.ControlTimeout,
        });
        var replies = await Task.WhenAll(Methods.Select(async m => (Method: m, Replies: await inspector.AskAsync(m, null, ct).ConfigureAwait(false)))).ConfigureAwait(false);
        var seen = new Dictionary<string, WorkerInspection>(StringComparer.Ordinal);
        double now = time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
        foreach ((string method, ReplyDictionary<JsonElement> byWorker) in replies)
        {
            foreach ((string worker, JsonElement value) in byWorker)
            {
                if (!seen.TryGetValue(worker, out WorkerInspection? i))
                {
                    if (!_workers.ContainsKey(worker) && _workers.Count >= options.Value.MaxWorkers)
                    {
                        continue;
                    }

                    i = seen[worker] = _workers.GetOrAdd(worker, _ => new WorkerInspection());
                    i.Timestamp = now;
                }

                i.Replies[method] = JsonNode.Parse(value.GetRawText());
            }
        }

        return seen;
    }
}
