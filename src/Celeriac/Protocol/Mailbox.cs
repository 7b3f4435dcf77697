using System.Buffers;
using System.Text.Json;
using Celeriac.Protocol;
using Celeriac.Transport;

// In Protocol/ because the pidbox format is wire format that both sides use: the app sends control requests
// (revoke, broadcast) and the worker reads them, and App sits below Control; the namespace users import is kept.
namespace Celeriac.Control;

/// <summary>A remote-control request as kombu's pidbox carries it (<c>celery control</c> / <c>celery inspect</c>).</summary>
/// <param name="Method">The command (<c>revoke</c>, <c>ping</c>, ...).</param>
/// <param name="Arguments">Its arguments (a JSON object).</param>
/// <param name="Destination">The node names it is for, or <see langword="null"/> for all.</param>
/// <param name="Ticket">The id replies carry.</param>
/// <param name="ReplyExchange">Where replies go (<c>reply.celery.pidbox</c>), or <see langword="null"/> when no reply is wanted.</param>
/// <param name="ReplyRoutingKey">The client's reply routing key (its oid).</param>
/// <param name="Expires">When the request goes stale, or <see langword="null"/>.</param>
public sealed record ControlRequest(string Method, JsonElement Arguments, IReadOnlyList<string>? Destination, string? Ticket, string? ReplyExchange, string? ReplyRoutingKey, DateTimeOffset? Expires);

/// <summary>
/// kombu's pidbox mailbox, which Celery's remote control rides on: requests go out on the
/// <c>celery.pidbox</c> fanout exchange as <c>{"method", "arguments", "destination", "pattern", "matcher",
/// "ticket", "reply_to"}</c>; replies go to the <c>reply.celery.pidbox</c> direct exchange, routed by the
/// client's oid, as <c>{"&lt;node&gt;": {"ok": ...}}</c>.
/// </summary>
public static class Mailbox
{
    /// <summary>The fanout exchange of requests.</summary>
    public const string Exchange = "celery.pidbox";

    /// <summary>The direct exchange of replies.</summary>
    public const string ReplyExchange = "reply.celery.pidbox";

    /// <summary>
    /// A broadcast request (no reply wanted unless <paramref name="replyTo"/>, the client's oid, is given); replies carry
    /// <paramref name="ticket"/> (a new one when <see langword="null"/>). It goes stale after <paramref name="timeout"/>,
    /// or never when that is zero (kombu's <c>expires</c> 0).
    /// </summary>
    public static TransportMessage Request(string method, IReadOnlyDictionary<string, object?> arguments, IReadOnlyList<string>? destination, string? replyTo, TimeProvider time, TimeSpan timeout, string? ticket = null)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(time);
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("method"u8, method);
            w.WritePropertyName("arguments"u8);
            JsonValues.Write(w, arguments.ToDictionary(StringComparer.Ordinal));
            w.WritePropertyName("destination"u8);
            if (destination is null)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteStartArray();
                foreach (string d in destination)
                {
                    w.WriteStringValue(d);
                }

                w.WriteEndArray();
            }

            w.WriteNull("pattern"u8);
            w.WriteNull("matcher"u8);
            w.WriteString("ticket"u8, ticket ?? Guid.NewGuid().ToString());
            if (replyTo is null)
            {
                w.WriteNull("reply_to"u8);
            }
            else
            {
                w.WriteStartObject("reply_to"u8);
                w.WriteString("exchange"u8, ReplyExchange);
                w.WriteString("routing_key"u8, replyTo);
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        double expires = timeout <= TimeSpan.Zero ? 0 : (time.GetUtcNow() + timeout).ToUnixTimeMilliseconds() / 1000.0;
        return new TransportMessage
        {
            Body = buffer.WrittenMemory.ToArray(),
            DeliveryMode = 2,
            Headers = new Dictionary<string, object?>(StringComparer.Ordinal) { ["clock"] = 1L, ["expires"] = expires },
        };
    }

    /// <summary>Reads a request; <see langword="false"/> for anything that is not one (never throws for bad input).</summary>
    public static bool TryParse(TransportMessage message, out ControlRequest? request)
    {
        ArgumentNullException.ThrowIfNull(message);
        request = null;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(message.Body, new JsonDocumentOptions { MaxDepth = 64 });
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("method", out JsonElement method) || method.ValueKind != JsonValueKind.String)
            {
                return false;
            }

            JsonElement arguments = root.TryGetProperty("arguments", out JsonElement a) && a.ValueKind == JsonValueKind.Object ? a.Clone() : JsonDocument.Parse("{}").RootElement.Clone();
            List<string>? destination = null;
            if (root.TryGetProperty("destination", out JsonElement d) && d.ValueKind == JsonValueKind.Array)
            {
                destination = [.. d.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!)];
            }

            string? ticket = root.TryGetProperty("ticket", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            string? replyExchange = null;
            string? replyKey = null;
            if (root.TryGetProperty("reply_to", out JsonElement r) && r.ValueKind == JsonValueKind.Object
                && r.TryGetProperty("exchange", out JsonElement rx) && rx.ValueKind == JsonValueKind.String
                && r.TryGetProperty("routing_key", out JsonElement rk) && rk.ValueKind == JsonValueKind.String)
            {
                replyExchange = rx.GetString();
                replyKey = rk.GetString();
            }

            // kombu's Mailbox sends expires 0 for a request that never goes stale (a revoke without reply=True).
            DateTimeOffset? expires = message.Headers.TryGetValue("expires", out object? e) ? e switch
            {
                double seconds when seconds > 0 => DateTimeOffset.FromUnixTimeMilliseconds((long)(seconds * 1000)),
                long seconds when seconds > 0 => DateTimeOffset.FromUnixTimeSeconds(seconds),
                _ => null,
            } : null;
            request = new ControlRequest(method.GetString()!, arguments, destination, ticket, replyExchange, replyKey, expires);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// A reply <c>{"&lt;node&gt;": value}</c> to <paramref name="request"/>; <paramref name="value"/> is any plain value
    /// (<c>{"ok": ...}</c>, a list, <see langword="null"/>). <paramref name="clock"/> is the replier's Lamport clock.
    /// </summary>
    public static TransportMessage Reply(ControlRequest request, string node, object? value, long clock = 1)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = new Dictionary<string, object?>(StringComparer.Ordinal) { [node] = value };
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer))
        {
            JsonValues.Write(w, body);
        }

        var headers = new Dictionary<string, object?>(StringComparer.Ordinal) { ["clock"] = clock };
        if (request.Ticket is not null)
        {
            headers["ticket"] = request.Ticket;
        }

        return new TransportMessage { Body = buffer.WrittenMemory.ToArray(), DeliveryMode = 1, Headers = headers };
    }

    /// <summary>Whether a <c>revoke</c> request asks to terminate the tasks that run (<c>terminate=True</c>).</summary>
    public static bool Terminates(ControlRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Arguments.ValueKind == JsonValueKind.Object
            && request.Arguments.TryGetProperty("terminate", out JsonElement terminate)
            && terminate.ValueKind == JsonValueKind.True;
    }

    /// <summary>The task ids of a <c>revoke</c> request (<c>task_id</c> is one id or a list).</summary>
    public static IReadOnlyList<string> RevokedIds(ControlRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Arguments.ValueKind != JsonValueKind.Object || !request.Arguments.TryGetProperty("task_id", out JsonElement ids))
        {
            return [];
        }

        return ids.ValueKind switch
        {
            JsonValueKind.String => [ids.GetString()!],
            JsonValueKind.Array => [.. ids.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!)],
            _ => [],
        };
    }

}
