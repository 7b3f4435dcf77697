// In Protocol/ because it is the wire shape that the codecs (KombuEnvelope, TaskMessage) read and write, and
// Transport builds on Protocol, never the reverse; the namespace stays the one users import it from.
namespace Celeriac.Transport;

/// <summary>
/// One message as a broker carries it: body bytes, content type, headers and AMQP-style properties.
/// The same shape serves tasks, events and remote-control messages.
/// </summary>
public sealed record TransportMessage
{
    /// <summary>The body bytes (for a task: the JSON <c>[args, kwargs, embed]</c>).</summary>
    public required ReadOnlyMemory<byte> Body { get; init; }

    /// <summary>MIME type of the body. <value>application/json</value></summary>
    public string ContentType { get; init; } = Protocol.CeleryJson.ContentType;

    /// <summary>Encoding of the body. <value>utf-8</value></summary>
    public string ContentEncoding { get; init; } = Protocol.CeleryJson.ContentEncoding;

    /// <summary>Message headers as plain JSON values (see <see cref="Protocol.JsonValues"/>).</summary>
    public IDictionary<string, object?> Headers { get; init; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>Correlation id; Celery sets it to the task id.</summary>
    public string? CorrelationId { get; init; }

    /// <summary>Where replies go; Celery sets the client's result-consumer id.</summary>
    public string? ReplyTo { get; init; }

    /// <summary>2 = persistent, 1 = transient. <value>2</value></summary>
    public int DeliveryMode { get; init; } = 2;

    /// <summary>
    /// Per-message TTL in milliseconds as a string (AMQP's <c>expiration</c>), or <see langword="null"/>.
    /// Celery sets it from a task's <c>expires</c> on every transport; only AMQP brokers act on it.
    /// </summary>
    public string? Expiration { get; init; }

    /// <summary>Message priority 0–255, or <see langword="null"/> for none.</summary>
    public int? Priority { get; init; }

    /// <summary>The exchange it was published to, as the broker reports it on delivery.</summary>
    public string Exchange { get; init; } = "";

    /// <summary>The routing key it was published with.</summary>
    public string RoutingKey { get; init; } = "";

    /// <summary>A transport-assigned tag (kombu writes a uuid on Redis).</summary>
    public string? DeliveryTag { get; init; }
}
