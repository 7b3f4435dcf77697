using System.Buffers;
using System.Text.Json;
using Celeriac.Transport;

namespace Celeriac.Protocol;

/// <summary>
/// A decoded protocol v2 task message: typed headers and the body <c>[args, kwargs, embed]</c>.
/// Holds a pooled JSON document; dispose it when the task is done.
/// </summary>
public sealed class TaskMessage : IDisposable
{
    private readonly JsonDocument _body;

    private TaskMessage(TaskHeaders headers, JsonDocument body, TransportMessage transport)
    {
        Headers = headers;
        _body = body;
        Transport = transport;
        JsonElement root = body.RootElement;
        Args = root[0];
        Kwargs = root[1];
        Embed = root.GetArrayLength() > 2 ? root[2] : default;
    }

    /// <summary>The typed headers.</summary>
    public TaskHeaders Headers { get; }

    /// <summary>The positional arguments (a JSON array).</summary>
    public JsonElement Args { get; }

    /// <summary>The keyword arguments (a JSON object).</summary>
    public JsonElement Kwargs { get; }

    /// <summary>The embed object: callbacks, errbacks, chain, chord (may be undefined or null).</summary>
    public JsonElement Embed { get; }

    /// <summary>Whether the embed names a success callback, a chain or a chord: the task's return value is then needed after it runs.</summary>
    public bool HasWorkflow => (EmbedParts() & 1) != 0;

    /// <summary>Whether the embed names anything at all (callbacks, errbacks, chain, chord).</summary>
    public bool HasEmbed => EmbedParts() != 0;

    private int _embedParts = -1;

    /// <summary>Read once per message (the worker asks several times): bit 1 a workflow, bit 2 errbacks.</summary>
    private int EmbedParts()
    {
        if (_embedParts < 0)
        {
            _embedParts = Embed.ValueKind != JsonValueKind.Object ? 0
                : (IsSet("callbacks"u8) || IsSet("chain"u8) || IsSet("chord"u8) ? 1 : 0) | (IsSet("errbacks"u8) ? 2 : 0);
        }

        return _embedParts;
    }

    private bool IsSet(ReadOnlySpan<byte> name) =>
        Embed.TryGetProperty(name, out JsonElement e) && e.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined) && !(e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 0);

    /// <summary>The message as the transport delivered it.</summary>
    public TransportMessage Transport { get; }

    /// <summary>The largest body the worker reads. <value>16 MiB</value></summary>
    public const int MaxBodyBytes = 16 * 1024 * 1024;

    /// <summary>
    /// Decodes a task message. Never throws for bad input: returns <see langword="false"/> with a one-line
    /// reason, and the id and name when they were readable (so that a FAILURE can be stored for them).
    /// </summary>
    public static bool TryDecode(TransportMessage message, out TaskMessage? task, out string? id, out string? name, out string? error)
    {
        task = null;
        id = message.Headers.TryGetValue("id", out object? idv) ? idv as string : null;
        name = message.Headers.TryGetValue("task", out object? namev) ? namev as string : null;
        if (!IsJson(message.ContentType))
        {
            error = message.ContentType is "application/x-python-serialize"
                ? "refusing to decode a pickle message: only application/json is accepted"
                : message.ContentType is MessageSigner.ContentType
                ? "a signed message (Celery's auth serializer, application/data) and message signing is not set up on this worker (Security:Key, Security:Certificate, Security:CertStore)"
                : $"unsupported content type '{message.ContentType}': only application/json is accepted";
            return false;
        }

        if (message.ContentEncoding is not ("utf-8" or "utf8" or "binary" or ""))
        {
            error = $"unsupported content encoding '{message.ContentEncoding}'";
            return false;
        }

        TaskHeaders? headers = TaskHeaders.TryParse(message.Headers, out id, out error);
        if (headers is null)
        {
            return false;
        }

        if (message.Body.Length > MaxBodyBytes)
        {
            error = $"body of {message.Body.Length} bytes is larger than the limit of {MaxBodyBytes}";
            return false;
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(message.Body, new JsonDocumentOptions { MaxDepth = JsonValues.MaxDepth });
        }
        catch (JsonException ex)
        {
            error = "body is not valid JSON: " + ex.Message;
            return false;
        }

        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Array || root.GetArrayLength() is < 2 or > 3 ||
            root[0].ValueKind != JsonValueKind.Array ||
            root[1].ValueKind != JsonValueKind.Object ||
            (root.GetArrayLength() == 3 && root[2].ValueKind is not (JsonValueKind.Object or JsonValueKind.Null)))
        {
            doc.Dispose();
            error = "body is not a protocol v2 body [args (list), kwargs (dict), embed (dict)]";
            return false;
        }

        task = new TaskMessage(headers, doc, message);
        error = null;
        return true;
    }

    private static bool IsJson(string contentType) =>
        contentType.Equals(CeleryJson.ContentType, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Builds the transport message of a task call. <paramref name="expiration"/> is the message TTL in
    /// milliseconds that Celery derives from <c>expires</c> (the <c>expiration</c> property), or <see langword="null"/>.
    /// </summary>
    public static TransportMessage Encode(TaskHeaders headers, IReadOnlyList<object?>? args, IReadOnlyDictionary<string, object?>? kwargs, TaskEmbed? embed, string? replyTo, int? priority, string? expiration = null)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = CeleryJson.Options.Encoder, SkipValidation = true }))
        {
            w.WriteStartArray();
            w.WriteStartArray();
            if (args is not null)
            {
                foreach (object? a in args)
                {
                    JsonValues.Write(w, a);
                }
            }

            w.WriteEndArray();
            w.WriteStartObject();
            if (kwargs is not null)
            {
                foreach (KeyValuePair<string, object?> kv in kwargs)
                {
                    w.WritePropertyName(kv.Key);
                    JsonValues.Write(w, kv.Value);
                }
            }

            w.WriteEndObject();
            (embed ?? TaskEmbed.Empty).WriteTo(w);
            w.WriteEndArray();
        }

        ReadOnlyMemory<byte> body = buffer.WrittenMemory.ToArray();
        headers.ArgsRepr ??= PythonRepr.OfArgs(body.Span, kwargs: false);
        headers.KwargsRepr ??= PythonRepr.OfArgs(body.Span, kwargs: true);
        return new TransportMessage
        {
            Body = body,
            Headers = headers.ToDictionary(),
            CorrelationId = headers.Id,
            ReplyTo = replyTo,
            Priority = priority,
            Expiration = expiration,
        };
    }

    /// <inheritdoc />
    public void Dispose() => _body.Dispose();
}

/// <summary>
/// The third element of a protocol v2 body: success callbacks, error callbacks, the rest of a chain, and
/// a chord's callback, each kept as raw JSON (signatures) until the canvas reads them.
/// </summary>
public sealed record TaskEmbed(JsonElement? Callbacks = null, JsonElement? Errbacks = null, JsonElement? Chain = null, JsonElement? Chord = null)
{
    /// <summary>No callbacks, no chain, no chord.</summary>
    public static TaskEmbed Empty { get; } = new();

    /// <summary>Writes the embed as Celery does: every key present, null when unset.</summary>
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        WriteOne(w, "callbacks", Callbacks);
        WriteOne(w, "errbacks", Errbacks);
        WriteOne(w, "chain", Chain);
        WriteOne(w, "chord", Chord);
        w.WriteEndObject();

        static void WriteOne(Utf8JsonWriter w, string name, JsonElement? value)
        {
            w.WritePropertyName(name);
            if (value is { } v)
            {
                v.WriteTo(w);
            }
            else
            {
                w.WriteNullValue();
            }
        }
    }
}
