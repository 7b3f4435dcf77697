using Celeriac.RabbitMQ;

namespace Celeriac;

/// <summary><c>UseRabbitMq(...)</c>: RabbitMQ as the broker, results by <c>rpc://</c> unless another backend is set.</summary>
public static class RabbitMqCeleriacBuilderExtensions
{
    private static readonly string[] s_schemes = ["amqp", "amqps"];

    /// <summary>
    /// Uses the RabbitMQ node at <paramref name="url"/> (<c>amqp://user:password@host:5672/vhost</c>, <c>amqps://</c>
    /// for TLS, as Celery's) as the broker; with no result backend set, results go back by <c>rpc://</c>. The
    /// provider is registered explicitly (no look-up by assembly name).
    /// </summary>
    public static CeleriacBuilder UseRabbitMq(this CeleriacBuilder builder, string url = "amqp://guest:guest@localhost:5672//")
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseBroker(new RabbitMqProvider(), url, s_schemes);
    }

    /// <summary>Uses RabbitMQ as the broker, the URL made from parts (a password kept out of a URL in configuration).</summary>
    public static CeleriacBuilder UseRabbitMq(this CeleriacBuilder builder, Action<CeleriacRabbitMqOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new CeleriacRabbitMqOptions();
        configure(options);
        return builder.UseRabbitMq(options.ToUrl());
    }
}

/// <summary>A RabbitMQ node's address, for <c>UseRabbitMq(o =&gt; ...)</c>.</summary>
public sealed class CeleriacRabbitMqOptions
{
    /// <summary>The host. <value>localhost</value></summary>
    public string Host { get; set; } = "localhost";

    /// <summary>The port. <value>5672 (5671 with TLS)</value></summary>
    public int? Port { get; set; }

    /// <summary>The virtual host. <value>/</value></summary>
    public string VirtualHost { get; set; } = "/";

    /// <summary>The user. <value>guest</value></summary>
    public string User { get; set; } = "guest";

    /// <summary>The password. <value>guest</value></summary>
    public string Password { get; set; } = "guest";

    /// <summary>TLS (<c>amqps://</c>). <value>false</value></summary>
    public bool Tls { get; set; }

    /// <summary>The URL these parts make, escaped.</summary>
    public string ToUrl() => FormattableString.Invariant(
        $"{(Tls ? "amqps" : "amqp")}://{Uri.EscapeDataString(User)}:{Uri.EscapeDataString(Password)}@{Host}:{Port ?? (Tls ? 5671 : 5672)}/{(VirtualHost == "/" ? "/" : Uri.EscapeDataString(VirtualHost))}");
}
