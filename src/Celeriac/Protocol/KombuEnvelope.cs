using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
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

            // The body is kept as where it lies in the input (base64 is decoded from there, with no string between)
            // unless it has escapes, when it is read as text.
            int bodyStart = -1;
            int bodyLength = 0;
            string? bodyText = null;
            string contentType = "";
            string contentEncoding = "";
            Dictionary<string, object?>? headers = null;
            Properties? properties = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("body"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        if (!reader.ValueIsEscaped && !reader.HasValueSequence)
                        {
                            bodyStart = checked((int)reader.TokenStartIndex + 1);
                            bodyLength = reader.ValueSpan.Length;
                            bodyText = null;
                        }
                        else
                        {
                            bodyText = reader.GetString();
                            bodyStart = -1;
                        }
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                else if (reader.ValueTextEquals("content-type"u8))
                {
                    contentType = StringOrNull(ref reader) ?? "";
                }
                else if (reader.ValueTextEquals("content-encoding"u8))
                {
                    contentEncoding = StringOrNull(ref reader) ?? "";
                }
                else if (reader.ValueTextEquals("headers"u8))
                {
                    reader.Read();
                    headers = reader.TokenType switch
                    {
                        JsonTokenType.Null => null,
                        JsonTokenType.StartObject => JsonValues.ReadObject(ref reader, HeadersCapacity),
                        _ => throw new JsonException("headers is not an object"),
                    };
                }
                else if (reader.ValueTextEquals("properties"u8))
                {
                    reader.Read();
                    properties = Properties.Read(ref reader);
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (bodyStart < 0 && bodyText is null)
            {
                error = "envelope has no body";
                return false;
            }

            if (properties is not { } p)
            {
                error = "envelope has no properties";
                return false;
            }

            if (!TryDecodeBody(bodyStart >= 0 ? utf8.Slice(bodyStart, bodyLength) : default, bodyText, p.BodyEncoding == "base64", out ReadOnlyMemory<byte> body))
            {
                error = "body is not valid base64";
                return false;
            }

            message = new TransportMessage
            {
                Body = body,
                ContentType = contentType,
                ContentEncoding = contentEncoding,
                Headers = headers ?? new Dictionary<string, object?>(StringComparer.Ordinal),
                CorrelationId = p.CorrelationId,
                ReplyTo = p.ReplyTo,
                DeliveryMode = p.DeliveryMode,
                Expiration = p.Expiration,
                Priority = p.Priority,
                DeliveryTag = p.DeliveryTag,
                Exchange = p.Exchange ?? "",
                RoutingKey = p.RoutingKey ?? "",
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

    /// <summary>Reads the value after the current property name: its text when it is a string, else null.</summary>
    private static string? StringOrNull(ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.String)
        {
            return JsonValues.ReadString(ref reader);
        }

        JsonValues.Read(ref reader);
        return null;
    }

    /// <summary>Celery's protocol 2 sends about 17 headers: room for them without the dictionary growing.</summary>
    private const int HeadersCapacity = 24;

    /// <summary>
    /// The body's bytes: base64-decoded when <paramref name="base64"/>, else the text's UTF-8. The text is either
    /// <paramref name="raw"/> (unescaped UTF-8 as it lies in the envelope) or <paramref name="text"/> (read as a string).
    /// </summary>
    private static bool TryDecodeBody(ReadOnlySpan<byte> raw, string? text, bool base64, out ReadOnlyMemory<byte> body)
    {
        if (text is null && !base64)
        {
            // The text's UTF-8 is the bytes as they lie.
            body = Utf8.IsValid(raw) ? raw.ToArray() : throw new InvalidOperationException("the body is not valid UTF-8");
            return true;
        }

        if (text is null)
        {
            byte[] decoded = new byte[Base64.GetMaxDecodedFromUtf8Length(raw.Length)];
            if (Base64.DecodeFromUtf8(raw, decoded, out _, out int written) == OperationStatus.Done)
            {
                body = decoded.AsMemory(0, written);
                return true;
            }
        }

        // Escapes, or whitespace in the base64: through a string, as Python's json reads it.
        text ??= Utf8.IsValid(raw) ? Encoding.UTF8.GetString(raw) : throw new InvalidOperationException("the body is not valid UTF-8");
        if (!base64)
        {
            body = Encoding.UTF8.GetBytes(text);
            return true;
        }

        byte[] bytes = new byte[(text.Length * 3 / 4) + 3];
        if (!Convert.TryFromBase64String(text, bytes, out int length))
        {
            body = default;
            return false;
        }

        body = bytes.AsMemory(0, length);
        return true;
    }

    /// <summary>The envelope's <c>properties</c> that a message carries, read without a dictionary of them all.</summary>
    private struct Properties
    {
        public string? CorrelationId;
        public string? ReplyTo;
        public int DeliveryMode;
        public string? Expiration;
        public int? Priority;
        public string? DeliveryTag;
        public string? BodyEncoding;
        public string? Exchange;
        public string? RoutingKey;

        /// <summary>
        /// Reads the object at the reader's current token. As from a dictionary of them: a repeated name's last value
        /// wins, and a value of another type counts as absent (a delivery tag of any type is its text).
        /// </summary>
        public static Properties Read(ref Utf8JsonReader reader)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new JsonException("properties is not an object");
            }

            var p = default(Properties);
            long? mode = null;
            long? priority = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("correlation_id"u8))
                {
                    p.CorrelationId = StringOrNull(ref reader);
                }
                else if (reader.ValueTextEquals("reply_to"u8))
                {
                    p.ReplyTo = StringOrNull(ref reader);
                }
                else if (reader.ValueTextEquals("delivery_mode"u8))
                {
                    reader.Read();
                    mode = JsonValues.Read(ref reader) as long?;
                }
                else if (reader.ValueTextEquals("expiration"u8))
                {
                    p.Expiration = StringOrNull(ref reader);
                }
                else if (reader.ValueTextEquals("priority"u8))
                {
                    reader.Read();
                    priority = JsonValues.Read(ref reader) as long?;
                }
                else if (reader.ValueTextEquals("delivery_tag"u8))
                {
                    reader.Read();
                    p.DeliveryTag = reader.TokenType == JsonTokenType.String ? JsonValues.ReadString(ref reader) : JsonValues.Read(ref reader)?.ToString();
                }
                else if (reader.ValueTextEquals("body_encoding"u8))
                {
                    p.BodyEncoding = StringOrNull(ref reader);
                }
                else if (reader.ValueTextEquals("delivery_info"u8))
                {
                    reader.Read();
                    p.Exchange = null;
                    p.RoutingKey = null;
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        ReadDeliveryInfo(ref reader, ref p);
                    }
                    else
                    {
                        JsonValues.Read(ref reader);
                    }
                }
                else
                {
                    reader.Read();
                    JsonValues.Read(ref reader);
                }
            }

            p.DeliveryMode = mode is { } m ? (int)m : 2;
            p.Priority = priority is { } pr ? (int)Math.Clamp(pr, 0, 255) : null;
            return p;
        }

        private static void ReadDeliveryInfo(ref Utf8JsonReader reader, ref Properties p)
        {
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("exchange"u8))
                {
                    p.Exchange = StringOrNull(ref reader);
                }
                else if (reader.ValueTextEquals("routing_key"u8))
                {
                    p.RoutingKey = StringOrNull(ref reader);
                }
                else
                {
                    reader.Read();
                    JsonValues.Read(ref reader);
                }
            }
        }
    }
}
