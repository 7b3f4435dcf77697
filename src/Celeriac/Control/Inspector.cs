using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace Celeriac.Control;

/// <summary>
/// Celery's <c>app.control.inspect()</c>: asks the workers (Celeriac or Celery) what they hold and how they are set.
/// Each call returns the answers by node name; a node that answered with an error is in
/// <see cref="ReplyDictionary{T}.Errors"/> instead.
/// </summary>
public sealed class Inspector
{
    private readonly ICeleriacControl _client;
    private readonly ControlOptions _options;

    /// <summary>An inspector that asks through <paramref name="control"/> (a fake one in a test) the workers <paramref name="options"/> name.</summary>
    public Inspector(ICeleriacControl control, ControlOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(control);
        _client = control;
        _options = (options ?? new ControlOptions()) with { Reply = true };
    }

    /// <summary><c>ping</c>: <c>"pong"</c> by node.</summary>
    public Task<ReplyDictionary<string>> PingAsync(CancellationToken ct = default) => AskAsync("ping", null, v => Text(v, "ok"), ct);

    /// <summary><c>active</c>: the tasks running now (<paramref name="safe"/>: arguments as reprs).</summary>
    public Task<ReplyDictionary<IReadOnlyList<TaskRequestInfo>>> ActiveAsync(bool safe = false, CancellationToken ct = default) =>
        AskAsync("active", ControlClient.Args(("safe", safe)), Requests, ct);

    /// <summary><c>reserved</c>: the tasks prefetched and waiting for a slot.</summary>
    public Task<ReplyDictionary<IReadOnlyList<TaskRequestInfo>>> ReservedAsync(CancellationToken ct = default) => AskAsync("reserved", null, Requests, ct);

    /// <summary><c>scheduled</c>: the tasks waiting for their ETA.</summary>
    public Task<ReplyDictionary<IReadOnlyList<ScheduledTaskInfo>>> ScheduledAsync(CancellationToken ct = default) =>
        AskAsync<IReadOnlyList<ScheduledTaskInfo>>("scheduled", null, v => [.. Items(v).Select(ScheduledTaskInfo.FromJson)], ct);

    /// <summary><c>revoked</c>: the ids the workers were told to revoke.</summary>
    public Task<ReplyDictionary<IReadOnlyList<string>>> RevokedAsync(CancellationToken ct = default) => AskAsync("revoked", null, Strings, ct);

    /// <summary><c>registered</c>: the task names (with <paramref name="taskInfoItems"/>, e.g. <c>rate_limit</c>, in brackets).</summary>
    public Task<ReplyDictionary<IReadOnlyList<string>>> RegisteredAsync(IReadOnlyList<string>? taskInfoItems = null, CancellationToken ct = default) =>
        AskAsync("registered", taskInfoItems is null ? null : ControlClient.Args(("taskinfoitems", taskInfoItems.Cast<object?>().ToList())), Strings, ct);

    /// <summary><c>stats</c>: each worker's statistics (pid, clock, uptime, pool, broker, totals by task...).</summary>
    public Task<ReplyDictionary<WorkerStats>> StatsAsync(CancellationToken ct = default) => AskAsync("stats", null, v => new WorkerStats(v), ct);

    /// <summary><c>active_queues</c>: the queues each worker consumes.</summary>
    public Task<ReplyDictionary<IReadOnlyList<QueueInfo>>> ActiveQueuesAsync(CancellationToken ct = default) =>
        AskAsync<IReadOnlyList<QueueInfo>>("active_queues", null, v => [.. Items(v).Select(QueueInfo.FromJson)], ct);

    /// <summary><c>conf</c>: each worker's configuration (Celery's setting names).</summary>
    public Task<ReplyDictionary<JsonElement>> ConfAsync(bool withDefaults = false, CancellationToken ct = default) =>
        AskAsync("conf", ControlClient.Args(("with_defaults", withDefaults)), v => v, ct);

    /// <summary><c>query_task</c>: where the workers hold these tasks (<c>active</c>, <c>reserved</c> or <c>ready</c>).</summary>
    public Task<ReplyDictionary<IReadOnlyDictionary<string, TaskQueryInfo>>> QueryTaskAsync(IEnumerable<string> ids, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return AskAsync<IReadOnlyDictionary<string, TaskQueryInfo>>(
            "query_task",
            ControlClient.Args(("ids", ids.Cast<object?>().ToList())),
            v => v.ValueKind != JsonValueKind.Object ? new Dictionary<string, TaskQueryInfo>() : v.EnumerateObject().ToDictionary(p => p.Name, p => TaskQueryInfo.FromJson(p.Value), StringComparer.Ordinal),
            ct);
    }

    /// <summary><c>report</c>: the text a bug report wants.</summary>
    public Task<ReplyDictionary<string>> ReportAsync(CancellationToken ct = default) => AskAsync("report", null, v => Text(v, "ok"), ct);

    /// <summary><c>clock</c>: each worker's logical clock.</summary>
    public Task<ReplyDictionary<long>> ClockAsync(CancellationToken ct = default) =>
        AskAsync("clock", null, v => v.ValueKind == JsonValueKind.Object && v.TryGetProperty("clock", out JsonElement c) && c.TryGetInt64(out long l) ? l : 0, ct);

    /// <summary>Any inspect command by name, answers as sent.</summary>
    public Task<ReplyDictionary<JsonElement>> AskAsync(string command, IReadOnlyDictionary<string, object?>? arguments = null, CancellationToken ct = default) =>
        AskAsync(command, arguments, v => v, ct);

    private async Task<ReplyDictionary<T>> AskAsync<T>(string command, IReadOnlyDictionary<string, object?>? arguments, Func<JsonElement, T> read, CancellationToken ct)
    {
        IReadOnlyList<ControlReply> replies = await _client.BroadcastAsync(command, arguments, _options, ct).ConfigureAwait(false);
        var values = new Dictionary<string, T>(StringComparer.Ordinal);
        var errors = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (ControlReply reply in ControlClient.ByNode(replies).Values)
        {
            if (reply.Error is { } error)
            {
                errors[reply.Node] = error;
                continue;
            }

            try
            {
                values[reply.Node] = read(reply.Value);
            }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException or KeyNotFoundException)
            {
                errors[reply.Node] = "unreadable reply: " + reply.Value.GetRawText();
            }
        }

        return new ReplyDictionary<T>(values, errors);
    }

    private static JsonElement[] Items(JsonElement v) => v.ValueKind == JsonValueKind.Array ? [.. v.EnumerateArray()] : [];

    private static IReadOnlyList<TaskRequestInfo> Requests(JsonElement v) => [.. Items(v).Select(TaskRequestInfo.FromJson)];

    private static IReadOnlyList<string> Strings(JsonElement v) => [.. Items(v).Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText())];

    private static string Text(JsonElement v, string key) =>
        v.ValueKind == JsonValueKind.Object && v.TryGetProperty(key, out JsonElement t) ? (t.ValueKind == JsonValueKind.String ? t.GetString()! : t.GetRawText()) : v.GetRawText();
}

/// <summary>The answers of an inspect command by node name, and the nodes that answered with an error.</summary>
/// <typeparam name="T">The answer's type.</typeparam>
public sealed class ReplyDictionary<T> : IReadOnlyDictionary<string, T>
{
    private readonly Dictionary<string, T> _values;

    internal ReplyDictionary(Dictionary<string, T> values, IReadOnlyDictionary<string, string> errors)
    {
        _values = values;
        Errors = errors;
    }

    /// <summary>The nodes that answered with an error, and its text.</summary>
    public IReadOnlyDictionary<string, string> Errors { get; }

    /// <inheritdoc />
    public T this[string key] => _values[key];

    /// <inheritdoc />
    public IEnumerable<string> Keys => _values.Keys;

    /// <inheritdoc />
    public IEnumerable<T> Values => _values.Values;

    /// <inheritdoc />
    public int Count => _values.Count;

    /// <inheritdoc />
    public bool ContainsKey(string key) => _values.ContainsKey(key);

    /// <inheritdoc />
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out T value) => _values.TryGetValue(key, out value);

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, T>> GetEnumerator() => _values.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A task a worker holds, as Celery's <c>Request.info()</c> describes it.</summary>
public sealed record TaskRequestInfo
{
    /// <summary>The task id.</summary>
    public required string Id { get; init; }

    /// <summary>The task name.</summary>
    public required string Name { get; init; }

    /// <summary>Its positional arguments (or their repr, with <c>safe</c>).</summary>
    public JsonElement Args { get; init; }

    /// <summary>Its keyword arguments (or their repr, with <c>safe</c>).</summary>
    public JsonElement Kwargs { get; init; }

    /// <summary>The worker's node name.</summary>
    public string? Hostname { get; init; }

    /// <summary>When it started, for a running task.</summary>
    public DateTimeOffset? TimeStart { get; init; }

    /// <summary>Whether its message was acknowledged.</summary>
    public bool Acknowledged { get; init; }

    /// <summary>The exchange it came through.</summary>
    public string? Exchange { get; init; }

    /// <summary>Its routing key.</summary>
    public string? RoutingKey { get; init; }

    /// <summary>Its priority.</summary>
    public int? Priority { get; init; }

    /// <summary>Whether the broker delivered it before.</summary>
    public bool? Redelivered { get; init; }

    /// <summary>The process that runs it.</summary>
    public long? WorkerPid { get; init; }

    /// <summary>Reads <c>Request.info()</c>.</summary>
    public static TaskRequestInfo FromJson(JsonElement e)
    {
        JsonElement delivery = Prop(e, "delivery_info");
        return new TaskRequestInfo
        {
            Id = Str(e, "id") ?? "",
            Name = Str(e, "name") ?? Str(e, "type") ?? "",
            Args = Prop(e, "args").Clone(),
            Kwargs = Prop(e, "kwargs").Clone(),
            Hostname = Str(e, "hostname"),
            TimeStart = Prop(e, "time_start") is { ValueKind: JsonValueKind.Number } t ? DateTimeOffset.FromUnixTimeMilliseconds((long)(t.GetDouble() * 1000)) : null,
            Acknowledged = Prop(e, "acknowledged").ValueKind == JsonValueKind.True,
            Exchange = Str(delivery, "exchange"),
            RoutingKey = Str(delivery, "routing_key"),
            Priority = Prop(delivery, "priority") is { ValueKind: JsonValueKind.Number } p && p.TryGetInt32(out int pi) ? pi : null,
            Redelivered = Prop(delivery, "redelivered").ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => null },
            WorkerPid = Prop(e, "worker_pid") is { ValueKind: JsonValueKind.Number } w && w.TryGetInt64(out long pid) ? pid : null,
        };
    }

    internal static JsonElement Prop(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out JsonElement v) ? v : default;

    internal static string? Str(JsonElement e, string name) => Prop(e, name) is { ValueKind: JsonValueKind.String } s ? s.GetString() : null;
}

/// <summary>A task waiting for its ETA (<c>inspect scheduled</c>).</summary>
/// <param name="Eta">When it is due.</param>
/// <param name="Priority">The timer's priority.</param>
/// <param name="Request">The task.</param>
public sealed record ScheduledTaskInfo(DateTimeOffset? Eta, int Priority, TaskRequestInfo Request)
{
    /// <summary>Reads <c>{"eta", "priority", "request"}</c>.</summary>
    public static ScheduledTaskInfo FromJson(JsonElement e) => new(
        TaskRequestInfo.Str(e, "eta") is { } eta && DateTimeOffset.TryParse(eta, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out DateTimeOffset at) ? at : null,
        TaskRequestInfo.Prop(e, "priority") is { ValueKind: JsonValueKind.Number } p && p.TryGetInt32(out int pi) ? pi : 0,
        TaskRequestInfo.FromJson(TaskRequestInfo.Prop(e, "request")));
}

/// <summary>Where a worker holds a task (<c>inspect query_task</c>): <c>active</c>, <c>reserved</c> or <c>ready</c>.</summary>
/// <param name="State">The state.</param>
/// <param name="Request">The task.</param>
public sealed record TaskQueryInfo(string State, TaskRequestInfo Request)
{
    /// <summary>Reads <c>[state, info]</c>.</summary>
    public static TaskQueryInfo FromJson(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2
            ? new(e[0].GetString() ?? "", TaskRequestInfo.FromJson(e[1]))
            : throw new FormatException("query_task entry is not [state, info]");
}

/// <summary>A queue a worker consumes (<c>inspect active_queues</c>, kombu's <c>Queue.as_dict</c>).</summary>
/// <param name="Name">The queue.</param>
/// <param name="Exchange">Its exchange.</param>
/// <param name="ExchangeType">The exchange's type.</param>
/// <param name="RoutingKey">Its binding key.</param>
/// <param name="Raw">The whole entry as sent.</param>
public sealed record QueueInfo(string Name, string? Exchange, string? ExchangeType, string? RoutingKey, JsonElement Raw)
{
    /// <summary>Reads an entry.</summary>
    public static QueueInfo FromJson(JsonElement e)
    {
        JsonElement exchange = TaskRequestInfo.Prop(e, "exchange");
        return new(TaskRequestInfo.Str(e, "name") ?? "", TaskRequestInfo.Str(exchange, "name"), TaskRequestInfo.Str(exchange, "type"), TaskRequestInfo.Str(e, "routing_key"), e.Clone());
    }
}

/// <summary>A worker's <c>inspect stats</c>.</summary>
/// <param name="Raw">The whole reply.</param>
public sealed record WorkerStats(JsonElement Raw)
{
    /// <summary>The worker's process id.</summary>
    public long? Pid => TaskRequestInfo.Prop(Raw, "pid") is { ValueKind: JsonValueKind.Number } p && p.TryGetInt64(out long l) ? l : null;

    /// <summary>Seconds since it started.</summary>
    public double? Uptime => TaskRequestInfo.Prop(Raw, "uptime") is { ValueKind: JsonValueKind.Number } u ? u.GetDouble() : null;

    /// <summary>Its pool's concurrency (<c>pool["max-concurrency"]</c>).</summary>
    public int? MaxConcurrency => TaskRequestInfo.Prop(TaskRequestInfo.Prop(Raw, "pool"), "max-concurrency") is { ValueKind: JsonValueKind.Number } m && m.TryGetInt32(out int i) ? i : null;

    /// <summary>Its prefetch count.</summary>
    public int? PrefetchCount => TaskRequestInfo.Prop(Raw, "prefetch_count") is { ValueKind: JsonValueKind.Number } m && m.TryGetInt32(out int i) ? i : null;

    /// <summary>Tasks started since it started, by name.</summary>
    public IReadOnlyDictionary<string, long> Total =>
        TaskRequestInfo.Prop(Raw, "total") is { ValueKind: JsonValueKind.Object } t
            ? t.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Number).ToDictionary(p => p.Name, p => p.Value.GetInt64(), StringComparer.Ordinal)
            : new Dictionary<string, long>();
}
