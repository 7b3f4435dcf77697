using System.Globalization;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace Celeriac.Redis;

/// <summary>
/// A Redis URL as kombu and Celery read it: <c>redis://[[user]:password@]host[:port][/db]</c>, <c>rediss://</c>
/// (TLS, the server verified: <c>ssl_ca_certs</c>, <c>ssl_certfile</c>, <c>ssl_keyfile</c>, <c>ssl_cert_reqs=none</c>; see <see cref="BrokerTls"/>) and <c>redis+socket:///path.sock[?virtual_host=db]</c>,
/// with the transport option <c>global_keyprefix</c> as a query parameter.
/// </summary>
internal sealed record RedisEndpoint(string ServerKey, ConfigurationOptions Configuration, int Database, string KeyPrefix, string Display, BrokerTls? Tls = null)
{
    private const int DefaultPort = 6379;

    /// <summary>The server whatever the database: the connections of one process to it share what they know of its outages.</summary>
    public string OutageKey { get; init; } = "";

    /// <summary>Parses a URL; throws <see cref="CeleriacConfigurationException"/> with the reason.</summary>
    public static RedisEndpoint Parse(Uri url) => Parse(url, null);

    /// <summary>Parses a URL, with the time a first connection may take (else 5 s).</summary>
    public static RedisEndpoint Parse(Uri url, TimeSpan? connectTimeout)
    {
        ArgumentNullException.ThrowIfNull(url);
        string masked = UrlText.Mask(url);
        Dictionary<string, string> query = ParseQuery(url.Query);
        var config = new ConfigurationOptions
        {
            AbortOnConnectFail = false,
            ConnectTimeout = (int)Math.Clamp((connectTimeout ?? TimeSpan.FromSeconds(5)).TotalMilliseconds, 1, int.MaxValue),
            AsyncTimeout = 10_000,
            SyncTimeout = 10_000,
            KeepAlive = 10,
            ClientName = "celeriac",

            // CLIENT ID and CLIENT UNBLOCK (a stopping consumer ends its blocking pop), which the client counts as admin.
            AllowAdmin = true,

            // Fail at once while disconnected: the callers retry with their own back-off, so that nothing
            // queued inside the client is sent twice after a reconnect, or dropped after a timeout.
            BacklogPolicy = BacklogPolicy.FailFast,
            ReconnectRetryPolicy = new ExponentialRetry(250, 5000),
        };

        int db;
        BrokerTls? tls = null;
        string scheme = url.Scheme.ToLowerInvariant();
        if (scheme == "redis+socket")
        {
            string path = Uri.UnescapeDataString(url.AbsolutePath);
            if (path.Length == 0 || path == "/")
            {
                throw new CeleriacConfigurationException($"'{masked}' names no socket file: write redis+socket:///path/to/redis.sock.");
            }

            config.EndPoints.Add(new UnixDomainSocketEndPoint(path));
            db = query.TryGetValue("virtual_host", out string? vhost) ? ParseDb(vhost, masked) : 0;
        }
        else
        {
            if (string.IsNullOrEmpty(url.Host))
            {
                throw new CeleriacConfigurationException($"'{masked}' names no host: write {scheme}://host:port/db.");
            }

            string host = url.Host.Trim('[', ']');
            int port = url.IsDefaultPort || url.Port <= 0 ? DefaultPort : url.Port;
            config.EndPoints.Add(IPAddress.TryParse(host, out IPAddress? ip) ? new IPEndPoint(ip, port) : new DnsEndPoint(host, port));
            string path = url.AbsolutePath.Trim('/');
            db = path.Length == 0 ? 0 : ParseDb(path, masked);
            if (scheme == "rediss")
            {
                tls = ConfigureTls(config, url, host);
            }
        }

        if (url.UserInfo.Length > 0)
        {
            string[] parts = url.UserInfo.Split(':', 2);
            string user = Uri.UnescapeDataString(parts[0]);
            string? password = parts.Length == 2 ? Uri.UnescapeDataString(parts[1]) : null;
            if (password is null)
            {
                // redis://secret@host: kombu reads a lone user-info part as the password.
                config.Password = user;
            }
            else
            {
                config.Password = password;
                if (user.Length > 0)
                {
                    config.User = user;
                }
            }
        }

        config.DefaultDatabase = db;
        string prefix = query.GetValueOrDefault("global_keyprefix", "");

        // One connection per database: a broker on db 0 and a backend on db 1 sharing one would make the client
        // switch databases (SELECT) between most commands.
        string server = string.Join('|', scheme, string.Join(',', config.EndPoints.Select(e => e.ToString())), config.User, config.Password, config.Ssl, TlsKey(query));
        return new RedisEndpoint(server + "|" + db.ToString(CultureInfo.InvariantCulture), config, db, prefix, masked, tls) { OutageKey = server };
    }

    // The server is verified (against ssl_ca_certs, or the system's store) unless ssl_cert_reqs=none says otherwise; the
    // verdict is remembered, so that a failed handshake is reported as what it is rather than as an outage.
    private static BrokerTls ConfigureTls(ConfigurationOptions config, Uri url, string host)
    {
        BrokerTls tls = BrokerTls.FromUrl(url);
        config.Ssl = true;
        config.SslHost = host;
        config.CertificateValidation += (_, certificate, chain, errors) => tls.Validate(certificate, chain, errors);
        config.CertificateSelection += (_, _, _, remote, issuers) => tls.SelectClientCertificate(remote, issuers)!;

        return tls;
    }

    // Two URLs share a connection only when their TLS settings are the same.
    private static string TlsKey(Dictionary<string, string> query) =>
        string.Join('&', query.Where(kv => kv.Key.StartsWith("ssl_", StringComparison.OrdinalIgnoreCase) || kv.Key is "cert_reqs" or "ca_certs" or "certfile" or "keyfile" or "check_hostname")
            .OrderBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase).Select(kv => kv.Key + "=" + kv.Value));

    private static int ParseDb(string text, string masked) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int db) && db is >= 0 and < 100_000
            ? db
            : throw new CeleriacConfigurationException($"'{masked}': the database must be a number (redis://host:port/0), not '{text}'.");

    /// <summary>The query parameters of a URL (later ones win), unescaped.</summary>
    internal static Dictionary<string, string> ParseQuery(string query)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string pair in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] kv = pair.Split('=', 2);
            result[Uri.UnescapeDataString(kv[0])] = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
        }

        return result;
    }
}
