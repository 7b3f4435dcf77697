using Celeriac.Redis;

namespace Celeriac;

/// <summary><c>UseRedis(...)</c>: Redis as the broker (and, unless another is set, the result backend).</summary>
public static class RedisCeleriacBuilderExtensions
{
    private static readonly string[] s_schemes = ["redis", "rediss", "redis+socket"];

    /// <summary>
    /// Uses the Redis server at <paramref name="url"/> (<c>redis://[:password@]host:port/db</c>, <c>rediss://</c> for
    /// TLS, as Celery's) as the broker; with no result backend set, results are kept there too. The provider is
    /// registered explicitly (no look-up by assembly name).
    /// </summary>
    public static CeleriacBuilder UseRedis(this CeleriacBuilder builder, string url = "redis://localhost:6379/0")
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseBroker(new RedisProvider(), url, s_schemes);
    }

    /// <summary>Uses Redis as the broker, the URL made from parts (a password kept out of a URL in configuration).</summary>
    public static CeleriacBuilder UseRedis(this CeleriacBuilder builder, Action<CeleriacRedisOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new CeleriacRedisOptions();
        configure(options);
        return builder.UseRedis(options.ToUrl());
    }
}

/// <summary>A Redis server's address, for <c>UseRedis(o =&gt; ...)</c>.</summary>
public sealed class CeleriacRedisOptions
{
    /// <summary>The host. <value>localhost</value></summary>
    public string Host { get; set; } = "localhost";

    /// <summary>The port. <value>6379</value></summary>
    public int Port { get; set; } = 6379;

    /// <summary>The database number. <value>0</value></summary>
    public int Database { get; set; }

    /// <summary>The ACL user, if any. <value>null</value></summary>
    public string? User { get; set; }

    /// <summary>The password, if any. <value>null</value></summary>
    public string? Password { get; set; }

    /// <summary>TLS (<c>rediss://</c>). <value>false</value></summary>
    public bool Tls { get; set; }

    /// <summary>The URL these parts make, escaped.</summary>
    public string ToUrl()
    {
        string auth = (User, Password) switch
        {
            (null, null) => "",
            (_, null) => Uri.EscapeDataString(User!) + "@",
            _ => Uri.EscapeDataString(User ?? "") + ":" + Uri.EscapeDataString(Password!) + "@",
        };
        return FormattableString.Invariant($"{(Tls ? "rediss" : "redis")}://{auth}{Host}:{Port}/{Database}");
    }
}
