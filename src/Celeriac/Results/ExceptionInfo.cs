using System.Text.Json;

namespace Celeriac;

/// <summary>An exception as Celery encodes it: <c>{"exc_type", "exc_message": [...], "exc_module"}</c>.</summary>
/// <param name="Type">The exception type's name (Python class name, or the .NET type name).</param>
/// <param name="Message">The message (the first of <c>exc_message</c>'s items, or all of them joined).</param>
/// <param name="Module">The Python module, or the .NET namespace.</param>
public sealed record ExceptionInfo(string Type, string Message, string? Module)
{
    /// <summary>The encoding of a .NET exception; a remote one keeps its own, <see cref="MaxRetriesExceededException"/> is Celery's.</summary>
    public static ExceptionInfo From(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception switch
        {
            TaskFailedException remote => new ExceptionInfo(remote.ExceptionType, remote.RemoteMessage, remote.ExceptionModule),
            MaxRetriesExceededException => new ExceptionInfo("MaxRetriesExceededError", exception.Message, "celery.exceptions"),
            ImproperlyConfiguredException => new ExceptionInfo("ImproperlyConfigured", exception.Message, "celery.exceptions"),
            TaskValidationException => new ExceptionInfo("ValidationError", exception.Message, exception.GetType().Namespace),
            _ => new ExceptionInfo(exception.GetType().Name, exception.Message, exception.GetType().Namespace),
        };
    }

    /// <summary>Writes Celery's dict.</summary>
    public void WriteTo(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteString("exc_type"u8, Type);
        w.WriteStartArray("exc_message"u8);
        w.WriteStringValue(Message);
        w.WriteEndArray();
        w.WriteString("exc_module"u8, Module);
        w.WriteEndObject();
    }

    /// <summary>The exception as Python's <c>repr()</c> shows it: <c>ValueError('deliberate error')</c>.</summary>
    public string ToPythonRepr() => Message.Length == 0 ? Type + "()" : $"{Type}({Protocol.PythonRepr.OfString(Message)})";

    /// <summary>Reads Celery's dict; other shapes (a bare string, say) are kept as the message.</summary>
    public static ExceptionInfo Read(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            return new ExceptionInfo("Exception", e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText(), null);
        }

        string type = e.TryGetProperty("exc_type", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "Exception";
        string? module = e.TryGetProperty("exc_module", out JsonElement m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        string message = "";
        if (e.TryGetProperty("exc_message", out JsonElement msg))
        {
            message = msg.ValueKind switch
            {
                JsonValueKind.String => msg.GetString()!,
                JsonValueKind.Array => string.Join(", ", msg.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString() : x.GetRawText())),
                JsonValueKind.Null => "",
                _ => msg.GetRawText(),
            };
        }

        return new ExceptionInfo(type, message, module);
    }
}
