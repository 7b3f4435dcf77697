using System.Text;
using System.Text.Json;
using Celeriac.Protocol;

namespace Celeriac;

/// <summary>
/// Celery's result document: <c>{"status", "result", "traceback", "children", "date_done", "task_id"}</c>,
/// plus <c>group_id</c>/<c>parent_id</c> when set and the extended fields when result extension is on.
/// The result is kept as raw JSON so that it is never decoded and encoded again on its way through.
/// </summary>
public sealed class TaskResultMeta
{
    private static readonly byte[] s_null = "null"u8.ToArray();
    private static readonly byte[] s_emptyList = "[]"u8.ToArray();

    /// <summary>The <c>children</c> of a task that sent none: <c>[]</c>.</summary>
    internal static ReadOnlyMemory<byte> NoChildren => s_emptyList;

    /// <summary>The task id.</summary>
    public required string TaskId { get; init; }

    /// <summary>One of <see cref="TaskStates"/>, or a custom state.</summary>
    public required string Status { get; init; }

    /// <summary>The state as a value to switch on; <see cref="TaskState.Custom"/> for a state of the task's own (its name is in <see cref="Status"/>).</summary>
    public TaskState TaskState => TaskStates.Parse(Status);

    /// <summary>The result value as JSON (for failures, Celery's exception dict). <value>null</value></summary>
    public ReadOnlyMemory<byte> Result { get; init; } = s_null;

    /// <summary>The traceback of a failure, or <see langword="null"/>.</summary>
    public string? Traceback { get; init; }

    /// <summary>The child results as JSON. <value>[]</value></summary>
    public ReadOnlyMemory<byte> Children { get; init; } = s_emptyList;

    /// <summary>When a ready state was stored; <see langword="null"/> for the others.</summary>
    public DateTimeOffset? DateDone { get; init; }

    /// <summary>The group id, when the task is part of a group.</summary>
    public string? GroupId { get; init; }

    /// <summary>The id of the task that sent this one.</summary>
    public string? ParentId { get; init; }

    /// <summary>Extended fields (task name, args, kwargs, worker, retries, queue), or <see langword="null"/>.</summary>
    public ResultExtension? Extended { get; init; }

    /// <summary>
    /// Where the caller wants results sent (the task message's <c>reply_to</c>, the client's oid): the rpc:// backend
    /// publishes there. Not part of the stored document.
    /// </summary>
    public string? ReplyTo { get; init; }

    /// <summary>The result's JSON value (parsed on each call).</summary>
    public JsonElement ResultElement
    {
        get
        {
            var reader = new Utf8JsonReader(Result.Span);
            return JsonElement.ParseValue(ref reader);
        }
    }

    /// <summary>The exception of a FAILURE, RETRY or REVOKED state, or <see langword="null"/>.</summary>
    public ExceptionInfo? Exception => TaskStates.IsException(Status) ? ExceptionInfo.Read(ResultElement) : null;

    /// <summary>Encodes as Celery stores it, in Celery's key order.</summary>
    public byte[] Encode() => JsonBuffers.Write(this, static (w, meta) => meta.WriteTo(w));

    /// <summary>Writes the document.</summary>
    public void WriteTo(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteString("status"u8, Status);
        w.WritePropertyName("result"u8);
        w.WriteRawValue(Result.Span, skipInputValidation: true);
        w.WriteString("traceback"u8, Traceback);
        w.WritePropertyName("children"u8);
        w.WriteRawValue(Children.Span, skipInputValidation: true);
        if (DateDone is { } done)
        {
            // Formatted straight to UTF-8: this runs once per task on the hot path.
            Span<byte> text = stackalloc byte[CeleryJson.DateDoneLength];
            w.WriteString("date_done"u8, text[..CeleryJson.WriteDateDone(done.UtcDateTime, text)]);
        }
        else
        {
            w.WriteNull("date_done"u8);
        }

        if (GroupId is not null)
        {
            w.WriteString("group_id"u8, GroupId);
        }

        if (ParentId is not null)
        {
            w.WriteString("parent_id"u8, ParentId);
        }

        if (Extended is { } x)
        {
            w.WriteString("name"u8, x.Name);
            w.WritePropertyName("args"u8);
            w.WriteRawValue(x.Args.IsEmpty ? s_null : x.Args.Span, skipInputValidation: true);
            w.WritePropertyName("kwargs"u8);
            w.WriteRawValue(x.Kwargs.IsEmpty ? s_null : x.Kwargs.Span, skipInputValidation: true);
            w.WriteString("worker"u8, x.Worker);
            w.WriteNumber("retries"u8, x.Retries);
            w.WriteString("queue"u8, x.Queue);
        }

        w.WriteString("task_id"u8, TaskId);
        w.WriteEndObject();
    }

    /// <summary>Reads a stored document; throws <see cref="JsonException"/> when it is not one.</summary>
    public static TaskResultMeta Parse(ReadOnlySpan<byte> utf8)
    {
        using JsonDocument doc = JsonDocument.Parse(utf8.ToArray());
        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("status", out JsonElement status) || status.ValueKind != JsonValueKind.String)
        {
            throw new JsonException("not a Celery result document: no 'status'");
        }

        string? Str(string name) => root.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
        byte[] Raw(string name, byte[] fallback) => root.TryGetProperty(name, out JsonElement e) ? Encoding.UTF8.GetBytes(e.GetRawText()) : fallback;

        ResultExtension? extended = null;
        if (root.TryGetProperty("name", out _) || root.TryGetProperty("worker", out _))
        {
            extended = new ResultExtension(
                Str("name"),
                Raw("args", s_null),
                Raw("kwargs", s_null),
                Str("worker"),
                root.TryGetProperty("retries", out JsonElement r) && r.TryGetInt32(out int n) ? n : 0,
                Str("queue"));
        }

        return new TaskResultMeta
        {
            TaskId = Str("task_id") ?? "",
            Status = status.GetString()!,
            Result = Raw("result", s_null),
            Traceback = Str("traceback"),
            Children = Raw("children", s_emptyList),
            DateDone = CeleryJson.TryParseIso(Str("date_done"), out DateTimeOffset done) ? done : null,
            GroupId = Str("group_id"),
            ParentId = Str("parent_id"),
            Extended = extended,
        };
    }

    /// <summary>Writes a task's result as Celery's <c>AsyncResult.as_tuple()</c> lists it: <c>[[id, null], null]</c> (no parent, no children).</summary>
    internal static void WriteResultTuple(Utf8JsonWriter w, string id)
    {
        w.WriteStartArray();
        w.WriteStartArray();
        w.WriteStringValue(id);
        w.WriteNullValue();
        w.WriteEndArray();
        w.WriteNullValue();
        w.WriteEndArray();
    }

    /// <summary>Serializes a value as a result's JSON.</summary>
    public static byte[] SerializeValue(object? value)
    {
        return value is null ? s_null : JsonBuffers.Write(value, static (w, v) => JsonValues.Write(w, v));
    }

    /// <summary>Serializes an exception as Celery's dict.</summary>
    public static byte[] SerializeException(ExceptionInfo error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return JsonBuffers.Write(error, static (w, e) => e.WriteTo(w));
    }
}

/// <summary>The extended result fields Celery 5 stores with <c>result_extended</c> on.</summary>
/// <param name="Name">The task name.</param>
/// <param name="Args">The positional arguments as JSON.</param>
/// <param name="Kwargs">The keyword arguments as JSON.</param>
/// <param name="Worker">The worker's host name.</param>
/// <param name="Retries">The retry count.</param>
/// <param name="Queue">The queue (routing key) it came from.</param>
public sealed record ResultExtension(string? Name, ReadOnlyMemory<byte> Args, ReadOnlyMemory<byte> Kwargs, string? Worker, int Retries, string? Queue);
