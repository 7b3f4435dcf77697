using System.Buffers;
using System.Text;
using System.Text.Json;
using Celeriac.Transport;

namespace Celeriac.Protocol;

/// <summary>
/// kombu's JSON envelope, as its virtual transports (Redis, SQS, memory, filesystem) store a message:
/// <c>{"body": base64, "content-encoding", "content-type", "headers", "properties": {..., "delivery_info"}}</c>.
/// Celeriac's SQLite transport stores the same bytes, so one decoder serves every key-value broker.
/// </summary>
public static class KombuEnvelope
{
    /// <summary>Writes a message as kombu's envelope (UTF-8 JSON).</summary>
    public static byte[] Encode(TransportMessage message, string exchange, string routingKey)
    {
        var buffer = new ArrayBufferWriter<byte>(256 + (message.Body.Length * 4 / 3));
        using (var w = new Utf8JsonWriter(buffer))
        {
            Write(w, message, exchange, routingKey);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes a message as kombu's envelope to <paramref name="w"/>.</summary>
    public static void Write(Utf8JsonWriter w, TransportMessage message, string exchange, string routingKey)
    {
        w.WriteStartObject();
        w.WriteBase64String("body"u8, message.Body.Span);
        w.WriteString("content-encoding"u8, message.ContentEncoding);
        w.WriteString("content-type"u8, message.ContentType);
        w.WritePropertyName("headers"u8);
        JsonValues.Write(w, message.Headers);
        w.WriteStartObject("properties"u8);
        if (message.CorrelationId is not null)
        {
            w.WriteString("correlation_id"u8, message.CorrelationId);
        }

        if (message.ReplyTo is not null)
        {
            w.WriteString("reply_to"u8, message.ReplyTo);
        }

        w.WriteNumber("delivery_mode"u8, message.DeliveryMode);
        if (message.Expiration is not null)
        {
            w.WriteString("expiration"u8, message.Expiration);
        }

        w.WriteStartObject("delivery_info"u8);
        w.WriteString("exchange"u8, exchange);
        w.WriteString("routing_key"u8, routingKey);
        w.WriteEndObject();
        w.WriteNumber("priority"u8, message.Priority ?? 0);
        w.WriteString("body_encoding"u8, "base64"u8);
        w.WriteString("delivery_tag"u8, message.DeliveryTag ?? Guid.NewGuid().ToString());
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>
    /// Reads kombu's envelope. Returns <see langword="false"/> with a one-line reason when the bytes are
    /// not a readable envelope; never throws for bad input.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> utf8, out TransportMessage? message, out string? error)
    {
        message = null;
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = JsonValues.MaxDepth + 2 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = "envelope is not a JSON object";
                return false;
            }

            ReadOnlyMemory<byte>? body = null;
            string? bodyText = null;
            string contentType = "";
            string contentEncoding = "";
            Dictionary<string, object?>? headers = null;
            Dictionary<string, object?>? properties = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                reader.Read();
                switch (name)
                {
                    case "body":
                        if (reader.TokenType == JsonTokenType.String)
                        {
                            bodyText = reader.GetString();
                        }
                        else
                        {
                            reader.Skip();
                        }

                        break;
                    case "content-type":
                        contentType = reader.TokenType == JsonTokenType.String ? reader.GetString()! : "";
                        break;
                    case "content-encoding":
                        contentEncoding = reader.TokenType == JsonTokenType.String ? reader.GetString()! : "";
                        break;
                    case "headers":
                        headers = reader.TokenType == JsonTokenType.Null ? null : JsonValues.Read(ref reader) as Dictionary<string, object?>
                            ?? throw new JsonException("headers is not an object");
                        break;
                    case "properties":
                        properties = JsonValues.Read(ref reader) as Dictionary<string, object?>
                            ?? throw new JsonException("properties is not an object");
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }

            if (bodyText is null)
            {
                error = "envelope has no body";
                return false;
            }

            if (properties is null)
            {
                error = "envelope has no properties";
                return false;
            }

            string bodyEncoding = properties.GetValueOrDefault("body_encoding") as string ?? "";
            if (bodyEncoding == "base64")
            {
                byte[] decoded = new byte[(bodyText.Length * 3 / 4) + 3];
                if (!Convert.TryFromBase64String(bodyText, decoded, out int written))
                {
                    error = "body is not valid base64";
                    return false;
                }

                body = decoded.AsMemory(0, written);
            }
            else
            {
                body = Encoding.UTF8.GetBytes(bodyText);
            }

            var deliveryInfo = properties.GetValueOrDefault("delivery_info") as Dictionary<string, object?>;
            message = new TransportMessage
            {
                Body = body.Value,
                ContentType = contentType,
                ContentEncoding = contentEncoding,
                Headers = headers ?? new Dictionary<string, object?>(StringComparer.Ordinal),
                CorrelationId = properties.GetValueOrDefault("correlation_id") as string,
                ReplyTo = properties.GetValueOrDefault("reply_to") as string,
                DeliveryMode = properties.GetValueOrDefault("delivery_mode") is long mode ? (int)mode : 2,
                Expiration = properties.GetValueOrDefault("expiration") as string,
                Priority = properties.GetValueOrDefault("priority") is long p ? (int)Math.Clamp(p, 0, 255) : null,
                DeliveryTag = properties.GetValueOrDefault("delivery_tag")?.ToString(),
                Exchange = deliveryInfo?.GetValueOrDefault("exchange") as string ?? "",
                RoutingKey = deliveryInfo?.GetValueOrDefault("routing_key") as string ?? "",
            };
            error = null;
            return true;
        }
        catch (JsonException ex)
        {
            error = "envelope is not valid JSON: " + ex.Message;
            return false;
        }
        catch (InvalidOperationException ex)
        {
            error = "envelope is not valid JSON: " + ex.Message;
            return false;
        }
    }
}
