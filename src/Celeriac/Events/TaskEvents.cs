using System.Text;
using System.Text.Json;
using Celeriac.Protocol;

namespace Celeriac.Events;

/// <summary>
/// The worker's task events with Celery's fields (<c>celery/worker/strategy.py</c> and <c>request.py</c>), written
/// straight to JSON so that a worker with events on allocates little more than the bytes it sends.
/// </summary>
internal static class TaskEvents
{
    private static readonly JsonEncodedText s_received = JsonEncodedText.Encode("task-received");
    private static readonly JsonEncodedText s_started = JsonEncodedText.Encode("task-started");
    private static readonly JsonEncodedText s_succeeded = JsonEncodedText.Encode("task-succeeded");
    private static readonly JsonEncodedText s_failed = JsonEncodedText.Encode("task-failed");
    private static readonly JsonEncodedText s_retried = JsonEncodedText.Encode("task-retried");
    private static readonly JsonEncodedText s_revoked = JsonEncodedText.Encode("task-revoked");
    private static readonly JsonEncodedText s_rejected = JsonEncodedText.Encode("task-rejected");

    /// <summary>SIGTERM's number: Celery's <c>terminate</c> sends it unless told otherwise, and reports it as <c>signum</c>.</summary>
    public const int SigTerm = 15;

    /// <summary><c>task-received</c>: uuid, name, args and kwargs (their reprs), root_id, parent_id, retries, eta, expires.</summary>
    public static void Received(EventDispatcher events, TaskMessage message) =>
        events.Buffer(s_received, message, static (w, m) =>
        {
            TaskHeaders h = m.Headers;
            w.WriteString("uuid"u8, h.Id);
            w.WriteString("name"u8, h.Task);
            w.WriteString("args"u8, h.ArgsRepr ?? PythonRepr.OfTuple(m.Args));
            w.WriteString("kwargs"u8, h.KwargsRepr ?? PythonRepr.Of(m.Kwargs));
            WriteOptional(w, "root_id"u8, h.RootId);
            WriteOptional(w, "parent_id"u8, h.ParentId);
            w.WriteNumber("retries"u8, h.Retries);
            WriteOptional(w, "eta"u8, h.Eta is { } eta ? CeleryJson.FormatIso(eta) : null);
            WriteOptional(w, "expires"u8, h.Expires is { } expires ? CeleryJson.FormatIso(expires) : null);
        });

    /// <summary><c>task-started</c>: the uuid only.</summary>
    public static void Started(EventDispatcher events, string id) =>
        events.Buffer(s_started, id, static (w, id) => w.WriteString("uuid"u8, id));

    /// <summary><c>task-succeeded</c>: the result's repr and the runtime in seconds.</summary>
    public static void Succeeded(EventDispatcher events, string id, byte[]? resultJson, double runtime) =>
        events.Buffer(s_succeeded, (id, resultJson, runtime), static (w, s) =>
        {
            w.WriteString("uuid"u8, s.id);
            w.WriteString("result"u8, Repr(s.resultJson));
            w.WritePropertyName("runtime"u8);
            EventMessages.WriteFloat(w, s.runtime);
        });

    /// <summary><c>task-failed</c> (or <c>task-retried</c>): the exception's repr and the traceback.</summary>
    public static void Failed(EventDispatcher events, string type, string id, string exception, string? traceback) =>
        events.Buffer(type switch { "task-failed" => s_failed, "task-retried" => s_retried, _ => JsonEncodedText.Encode(type) }, (id, exception, traceback), static (w, s) =>
        {
            w.WriteString("uuid"u8, s.id);
            w.WriteString("exception"u8, s.exception);
            WriteOptional(w, "traceback"u8, s.traceback);
        });

    /// <summary><c>task-revoked</c>: whether it was terminated (and by which signal) or expired.</summary>
    public static void Revoked(EventDispatcher events, string id, bool terminated, bool expired) =>
        events.Buffer(s_revoked, (id, terminated, expired), static (w, s) =>
        {
            w.WriteString("uuid"u8, s.id);
            w.WriteBoolean("terminated"u8, s.terminated);
            if (s.terminated)
            {
                w.WriteNumber("signum"u8, SigTerm);
            }
            else
            {
                w.WriteNull("signum"u8);
            }

            w.WriteBoolean("expired"u8, s.expired);
        });

    /// <summary><c>task-rejected</c>: whether the message went back to the queue.</summary>
    public static void Rejected(EventDispatcher events, string id, bool requeue) =>
        events.Buffer(s_rejected, (id, requeue), static (w, s) =>
        {
            w.WriteString("uuid"u8, s.id);
            w.WriteBoolean("requeue"u8, s.requeue);
        });

    /// <summary>
    /// A value's repr from its JSON (Celery sends <c>saferepr(retval)</c>, at most 1024 characters); <c>None</c> when
    /// there is none.
    /// </summary>
    public static string Repr(byte[]? json)
    {
        if (json is null || json.Length == 0)
        {
            return "None";
        }

        try
        {
            // Most results are a number, a string, a boolean or None: read as one token, without a document.
            var reader = new Utf8JsonReader(json);
            if (reader.Read() && IsScalarAtEnd(json, ref reader))
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.Number when reader.ValueSpan.IndexOfAny((byte)'e', (byte)'E') < 0:
                        return Encoding.UTF8.GetString(reader.ValueSpan);
                    case JsonTokenType.String:
                        return PythonRepr.OfString(reader.GetString()!);
                    case JsonTokenType.True:
                        return "True";
                    case JsonTokenType.False:
                        return "False";
                    case JsonTokenType.Null:
                        return "None";
                    default:
                        break;
                }
            }

            reader = new Utf8JsonReader(json);
            using var doc = JsonDocument.ParseValue(ref reader);
            return PythonRepr.Of(doc.RootElement);
        }
        catch (JsonException)
        {
            return Encoding.UTF8.GetString(json, 0, Math.Min(json.Length, PythonRepr.MaxLength));
        }
    }

    /// <summary>Whether the reader, past its first token, is at the end of the document but for white space.</summary>
    private static bool IsScalarAtEnd(byte[] json, ref Utf8JsonReader reader) =>
        reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray or JsonTokenType.None)
        && json.AsSpan((int)reader.BytesConsumed).Trim(" \t\r\n"u8).IsEmpty;

    /// <summary>
    /// An exception's repr from Celery's exception document, as Python prints it: <c>ValueError('boom')</c>,
    /// <c>TimeLimitExceeded(1)</c>, <c>KeyError()</c>.
    /// </summary>
    public static string ExceptionRepr(byte[]? document)
    {
        if (document is null || document.Length == 0)
        {
            return "None";
        }

        try
        {
            var reader = new Utf8JsonReader(document);
            using var doc = JsonDocument.ParseValue(ref reader);
            JsonElement e = doc.RootElement;
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("exc_type", out JsonElement type) || type.ValueKind != JsonValueKind.String)
            {
                return PythonRepr.Of(e);
            }

            var sb = new StringBuilder(type.GetString()).Append('(');
            if (e.TryGetProperty("exc_message", out JsonElement message))
            {
                if (message.ValueKind == JsonValueKind.Array)
                {
                    int i = 0;
                    foreach (JsonElement arg in message.EnumerateArray())
                    {
                        sb.Append(i++ > 0 ? ", " : "").Append(PythonRepr.Of(arg));
                    }
                }
                else if (message.ValueKind is not JsonValueKind.Null)
                {
                    sb.Append(PythonRepr.Of(message));
                }
            }

            return sb.Append(')').ToString();
        }
        catch (JsonException)
        {
            return Encoding.UTF8.GetString(document, 0, Math.Min(document.Length, PythonRepr.MaxLength));
        }
    }

    private static void WriteOptional(Utf8JsonWriter w, ReadOnlySpan<byte> name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }
}
