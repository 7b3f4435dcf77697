using System.Text.Json.Nodes;
using Celeriac.Dashboard.Store;

namespace Celeriac.Dashboard.Http;

/// <summary>Flower's JSON shapes: its task dict (<c>Task.as_dict()</c> with the worker's hostname) and the dashboard's worker row.</summary>
internal static class FlowerJson
{
    /// <summary>As Python's json.dumps: quotes and apostrophes as they are (the pages and scripts read the text).</summary>
    public static readonly System.Text.Json.JsonSerializerOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Flower's task dict: times as unix seconds or null, reprs as strings, the worker as its hostname.</summary>
    public static JsonObject Task(DashboardTask t) => new()
    {
        ["uuid"] = t.Uuid,
        ["name"] = t.Name,
        ["state"] = t.State,
        ["received"] = t.Received,
        ["sent"] = t.Sent,
        ["started"] = t.Started,
        ["rejected"] = t.Rejected,
        ["succeeded"] = t.Succeeded,
        ["failed"] = t.Failed,
        ["retried"] = t.Retried,
        ["revoked"] = t.Revoked,
        ["args"] = t.Args,
        ["kwargs"] = t.Kwargs,
        ["eta"] = t.Eta,
        ["expires"] = t.Expires,
        ["retries"] = t.Retries,
        ["result"] = t.Result,
        ["exception"] = t.Exception,
        ["timestamp"] = t.Timestamp,
        ["runtime"] = t.Runtime,
        ["traceback"] = t.Traceback,
        ["exchange"] = t.Exchange,
        ["routing_key"] = t.RoutingKey,
        ["clock"] = t.Clock,
        ["client"] = t.Client,
        ["root_id"] = t.RootId,
        ["parent_id"] = t.ParentId,
        ["worker"] = t.Worker,
    };

    /// <summary>A row of <c>api/dashboard/workers</c>.</summary>
    public static JsonObject WorkerRow(DashboardWorker w, double now) => new()
    {
        ["hostname"] = w.Hostname,
        ["online"] = w.IsOnline(now),
        ["active"] = w.Active,
        ["processed"] = w.Processed,
        ["succeeded"] = w.Succeeded,
        ["failed"] = w.Failed,
        ["retried"] = w.RetriedCount,
        ["loadavg"] = w.LoadAverage is { } load ? new JsonArray([.. load.Select(v => (JsonNode?)JsonValue.Create(v))]) : null,
        ["pool_size"] = w.PoolSize,
        ["queues"] = new JsonArray([.. w.Queues.Select(q => (JsonNode?)JsonValue.Create(q))]),
        ["last_heartbeat"] = w.LastHeartbeat,
        ["freq"] = w.Freq,
        ["pid"] = w.Pid,
        ["sw_ident"] = w.SwIdent,
        ["sw_ver"] = w.SwVer,
        ["sw_sys"] = w.SwSys,
    };
}
