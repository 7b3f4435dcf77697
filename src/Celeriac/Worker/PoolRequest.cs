using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using Celeriac.Protocol;
using Celeriac.Transport;

namespace Celeriac.Worker;

/// <summary>
/// A request as the worker hands it to a prefork child: the task message as kombu's envelope (the bytes a broker
/// would carry), the queue it came from, whether the result is wanted as JSON, and the soft time limit that the child
/// applies itself (the hard one is the parent's: it kills the child).
/// </summary>
internal sealed record PoolRequest(TransportMessage Transport, string Queue, bool ResultJson, double? SoftTimeLimit)
{
    public static byte[] Encode(TaskMessage message, string queue, bool resultJson, double? softTimeLimit)
    {
        TransportMessage transport = message.Transport;
        var buffer = new ArrayBufferWriter<byte>(512 + (transport.Body.Length * 4 / 3));
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("queue"u8, queue);
            w.WriteBoolean("result"u8, resultJson);
            if (softTimeLimit is { } soft)
            {
                w.WriteNumber("soft"u8, soft);
            }

            w.WritePropertyName("envelope"u8);
            KombuEnvelope.Write(w, transport, transport.Exchange, transport.RoutingKey);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads what <see cref="Encode"/> wrote; false with a one-line reason for anything else, never throwing.</summary>
    public static bool TryDecode(ReadOnlyMemory<byte> utf8, out PoolRequest? request, out string? error)
    {
        request = null;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = JsonValues.MaxDepth + 4 });
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("queue"u8, out JsonElement queue) || queue.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("envelope"u8, out JsonElement envelope))
            {
                error = "not a pool request";
                return false;
            }

            if (!KombuEnvelope.TryDecode(JsonMarshal.GetRawUtf8Value(envelope), out TransportMessage? transport, out error))
            {
                return false;
            }

            double? soft = root.TryGetProperty("soft"u8, out JsonElement s) && s.ValueKind == JsonValueKind.Number ? s.GetDouble() : null;
            bool result = root.TryGetProperty("result"u8, out JsonElement r) && r.ValueKind == JsonValueKind.True;
            request = new PoolRequest(transport!, queue.GetString()!, result, soft);
            return true;
        }
        catch (JsonException ex)
        {
            error = "pool request is not valid JSON: " + ex.Message;
            return false;
        }
    }
}
