using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Celeriac.Concurrency;

/// <summary>
/// A <see cref="TaskOutcome"/> as JSON, to cross from a prefork child to its parent. <see cref="TaskOutcome.Value"/>
/// and <see cref="TaskOutcome.Exception"/> stay behind: what the parent needs is the result JSON and the traceback.
/// </summary>
public static class TaskOutcomeCodec
{
    /// <summary>Writes <paramref name="outcome"/> as a UTF-8 JSON object.</summary>
    public static byte[] Encode(TaskOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var buffer = new ArrayBufferWriter<byte>(256 + (outcome.Result?.Length ?? 0) + (outcome.Traceback?.Length ?? 0));
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("kind"u8, outcome.Kind.ToString());
            if (outcome.Result is { } result)
            {
                w.WritePropertyName("result"u8);
                w.WriteRawValue(result, skipInputValidation: false);
            }

            if (outcome.Children is { } children)
            {
                w.WritePropertyName("children"u8);
                w.WriteRawValue(children, skipInputValidation: false);
            }

            WriteOptional(w, "traceback"u8, outcome.Traceback);
            WriteOptional(w, "error_type"u8, outcome.ErrorType);
            WriteOptional(w, "error_message"u8, outcome.ErrorMessage);
            WriteOptional(w, "error_module"u8, outcome.ErrorModule);
            WriteOptional(w, "reason"u8, outcome.Reason);
            w.WriteBoolean("log_stack"u8, outcome.LogStack);
            w.WriteBoolean("requeue"u8, outcome.Requeue);
            w.WriteBoolean("signals_raised"u8, outcome.SignalsRaised);
            w.WriteNumber("runtime"u8, double.IsFinite(outcome.Runtime) ? outcome.Runtime : 0);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads what <see cref="Encode"/> wrote; false with a one-line reason for anything else, never throwing.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> utf8, out TaskOutcome? outcome, out string? error)
    {
        outcome = null;
        try
        {
            var reader = new Utf8JsonReader(utf8);
            using JsonDocument doc = JsonDocument.ParseValue(ref reader);
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = "outcome is not a JSON object";
                return false;
            }

            if (!root.TryGetProperty("kind"u8, out JsonElement kindElement) || kindElement.ValueKind != JsonValueKind.String
                || !Enum.TryParse(kindElement.GetString(), ignoreCase: false, out TaskOutcomeKind kind) || !Enum.IsDefined(kind))
            {
                error = "outcome has no known kind";
                return false;
            }

            outcome = new TaskOutcome
            {
                Kind = kind,
                Result = root.TryGetProperty("result"u8, out JsonElement result) ? Encoding.UTF8.GetBytes(result.GetRawText()) : null,
                Children = root.TryGetProperty("children"u8, out JsonElement children) && children.ValueKind == JsonValueKind.Array ? Encoding.UTF8.GetBytes(children.GetRawText()) : null,
                Traceback = Text(root, "traceback"u8),
                ErrorType = Text(root, "error_type"u8),
                ErrorMessage = Text(root, "error_message"u8),
                ErrorModule = Text(root, "error_module"u8),
                Reason = Text(root, "reason"u8),
                LogStack = Flag(root, "log_stack"u8),
                Requeue = Flag(root, "requeue"u8),
                SignalsRaised = Flag(root, "signals_raised"u8),
                Runtime = root.TryGetProperty("runtime"u8, out JsonElement runtime) && runtime.ValueKind == JsonValueKind.Number ? runtime.GetDouble() : 0,
            };
            error = null;
            return true;
        }
        catch (JsonException ex)
        {
            error = "outcome is not valid JSON: " + ex.Message;
            return false;
        }
    }

    private static void WriteOptional(Utf8JsonWriter w, ReadOnlySpan<byte> name, string? value)
    {
        if (value is not null)
        {
            w.WriteString(name, value);
        }
    }

    private static string? Text(JsonElement root, ReadOnlySpan<byte> name) =>
        root.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;

    private static bool Flag(JsonElement root, ReadOnlySpan<byte> name) =>
        root.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.True;
}
