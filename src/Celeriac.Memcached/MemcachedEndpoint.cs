using System.Globalization;

namespace Celeriac.Memcached;

/// <summary>
/// The servers of a <c>cache+memcached://</c> URL, parsed as Celery's <c>CacheBackend</c> does: what follows
/// <c>://</c>, less its trailing slashes, split on <c>;</c> (<c>cache+memcached://host1:11211;host2:11211/</c>).
/// </summary>
internal sealed record MemcachedEndpoint(IReadOnlyList<MemcachedServerAddress> Servers)
{
    /// <summary>memcached's port when a server names none.</summary>
    public const int DefaultPort = 11211;

    /// <summary>Parses the URL; throws <see cref="CeleriacConfigurationException"/> naming what is wrong.</summary>
    public static MemcachedEndpoint Parse(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        string text = url.OriginalString;
        int start = text.IndexOf("://", StringComparison.Ordinal);
        if (start < 0)
        {
            throw new CeleriacConfigurationException($"The cache URL '{UrlText.Mask(url)}' has no '://' (expected cache+memcached://host:port/).");
        }

        string rest = text[(start + 3)..];
        int end = rest.IndexOfAny(['/', '?', '#']);
        string servers = end < 0 ? rest : rest[..end];
        var list = new List<MemcachedServerAddress>();
        foreach (string part in servers.Split(';'))
        {
            if (part.Length > 0)
            {
                list.Add(ParseServer(part, url));
            }
        }

        if (list.Count == 0)
        {
            throw new CeleriacConfigurationException($"The cache URL '{UrlText.Mask(url)}' names no memcached server (expected cache+memcached://host:port/, several as host1:port;host2:port).");
        }

        return new MemcachedEndpoint(list);
    }

    private static MemcachedServerAddress ParseServer(string server, Uri url)
    {
        string host = server;
        int port = DefaultPort;
        if (server.StartsWith('['))
        {
            // [::1]:11211
            int close = server.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw Bad(server, url);
            }

            host = server[1..close];
            string tail = server[(close + 1)..];
            if (tail.Length > 0)
            {
                port = tail.StartsWith(':') ? ParsePort(tail[1..], server, url) : throw Bad(server, url);
            }
        }
        else if (server.LastIndexOf(':') is var colon and >= 0)
        {
            host = server[..colon];
            port = ParsePort(server[(colon + 1)..], server, url);
        }

        return host.Length == 0 || host.Contains('@', StringComparison.Ordinal) ? throw Bad(server, url) : new MemcachedServerAddress(host, port);
    }

    private static int ParsePort(string text, string server, Uri url) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is > 0 and < 65536 ? port : throw Bad(server, url);

    private static CeleriacConfigurationException Bad(string server, Uri url) =>
        new($"The cache URL '{UrlText.Mask(url)}' has a server '{server}' that is not host or host:port.");
}

/// <summary>One memcached server.</summary>
internal sealed record MemcachedServerAddress(string Host, int Port)
{
    /// <inheritdoc />
    public override string ToString() => Host.Contains(':', StringComparison.Ordinal)
        ? string.Create(CultureInfo.InvariantCulture, $"[{Host}]:{Port}")
        : string.Create(CultureInfo.InvariantCulture, $"{Host}:{Port}");
}
