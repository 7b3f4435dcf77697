namespace Celeriac;

/// <summary>Parsing and safe display of broker and backend URLs.</summary>
public static class UrlText
{
    /// <summary>
    /// Schemes whose URL holds a connection string after <c>://</c> instead of a host and path (Celery's
    /// <c>azureblockblob://DefaultEndpointsProtocol=...;AccountKey=...</c>), which <see cref="Uri"/> cannot parse.
    /// </summary>
    private static readonly string[] s_connectionStringSchemes = ["azureblockblob"];

    /// <summary>Connection-string fields that are secrets, shown as <c>**</c>.</summary>
    private static readonly string[] s_secretFields = ["AccountKey=", "SharedAccessSignature="];

    static UrlText()
    {
        // Celery's cache backend lists its servers in the authority (cache+memcached://h1:11211;h2:11211/), which
        // Uri's default parser rejects as a bad port; a registry-based authority takes it as it is.
        foreach (string scheme in (string[])["cache+memcached", "cache+pylibmc"])
        {
            try
            {
                if (!UriParser.IsKnownScheme(scheme))
                {
                    UriParser.Register(new GenericUriParser(GenericUriParserOptions.GenericAuthority), scheme, -1);
                }
            }
            catch (InvalidOperationException)
            {
                // Registered meanwhile by someone else: theirs stands.
            }
        }
    }

    /// <summary>The URL with its password replaced by <c>**</c>, for logs and banners.</summary>
    public static string Mask(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        string text = url.OriginalString;
        if (IsConnectionStringUrl(url))
        {
            return url.Scheme + "://" + MaskConnectionString(ConnectionString(url)) + url.Query;
        }

        int colon = url.UserInfo.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return text;
        }

        string masked = url.UserInfo[..(colon + 1)] + "**";
        return text.Replace(url.UserInfo + "@", masked + "@", StringComparison.Ordinal);
    }

    /// <summary>The text with any password masked, even when it is not a valid URL.</summary>
    public static string Mask(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (ConnectionStringScheme(url) is { } scheme)
        {
            return scheme + "://" + MaskConnectionString(url[(scheme.Length + 3)..]);
        }

        return Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) ? Mask(uri) : url;
    }

    /// <summary>
    /// The connection string of a URL that holds one (<c>azureblockblob://&lt;connection string&gt;</c>), as
    /// <see cref="Parse"/> keeps it: everything after <c>://</c> up to the first <c>?</c>, unchanged.
    /// </summary>
    public static string ConnectionString(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        return IsConnectionStringUrl(url)
            ? Uri.UnescapeDataString(url.AbsolutePath)
            : throw new CeleriacConfigurationException($"The URL '{Mask(url)}' holds no connection string.");
    }

    /// <summary>Whether <paramref name="url"/> is a connection-string URL as <see cref="Parse"/> makes one (scheme, escaped text, query).</summary>
    private static bool IsConnectionStringUrl(Uri url) =>
        url.IsAbsoluteUri && Array.IndexOf(s_connectionStringSchemes, url.Scheme) >= 0 && !url.OriginalString.Contains("://", StringComparison.Ordinal);

    /// <summary>The connection-string scheme that <paramref name="url"/> starts with (<c>scheme://</c>), or <see langword="null"/>.</summary>
    private static string? ConnectionStringScheme(string url)
    {
        int sep = url.IndexOf("://", StringComparison.Ordinal);
        return sep > 0 && Array.Find(s_connectionStringSchemes, s => s.Equals(url[..sep], StringComparison.OrdinalIgnoreCase)) is { } scheme ? scheme : null;
    }

    private static string MaskConnectionString(string connectionString) =>
        string.Join(';', connectionString.Split(';').Select(part =>
            Array.Find(s_secretFields, f => part.StartsWith(f, StringComparison.OrdinalIgnoreCase)) is { } field ? part[..field.Length] + "**" : part));

    /// <summary>Parses a broker or backend URL; throws <see cref="CeleriacConfigurationException"/> naming what is wrong.</summary>
    public static Uri Parse(string url, string what)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            throw new CeleriacConfigurationException($"The {what} URL is empty.");
        }

        if (ConnectionStringScheme(url) is { } scheme)
        {
            // Kept as an opaque URI (scheme:escaped-text?query): the scheme picks the provider, the query holds settings
            // as on any other URL, and ConnectionString gives the text back unchanged.
            string rest = url[(scheme.Length + 3)..];
            int query = rest.IndexOf('?', StringComparison.Ordinal);
            string connectionString = query < 0 ? rest : rest[..query];
            if (connectionString.Length == 0 || !Uri.TryCreate(scheme + ":" + Uri.EscapeDataString(connectionString) + (query < 0 ? "" : rest[query..]), UriKind.Absolute, out Uri? opaque))
            {
                throw new CeleriacConfigurationException($"The {what} URL '{Mask(url)}' holds no valid connection string (expected {scheme}://DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...).");
            }

            return opaque;
        }

        if (!url.Contains("://", StringComparison.Ordinal) || !Uri.TryCreate(url, UriKind.Absolute, out Uri? uri))
        {
            throw new CeleriacConfigurationException($"The {what} URL '{Mask(url)}' is not a valid URL (expected scheme://..., e.g. sqlite:///celeriac.db).");
        }

        return uri;
    }

    /// <summary>
    /// The file path of a <c>sqlite://</c> URL, as SQLAlchemy reads one:
    /// <c>sqlite:///rel.db</c> is relative to the working directory, <c>sqlite:////abs/path.db</c> absolute.
    /// </summary>
    public static string FilePath(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        string text = url.OriginalString;
        int start = text.IndexOf("://", StringComparison.Ordinal) + 3;
        string rest = text[start..];
        int query = rest.IndexOf('?', StringComparison.Ordinal);
        if (query >= 0)
        {
            rest = rest[..query];
        }

        if (!rest.StartsWith('/'))
        {
            // sqlite://host/path: no host is meaningful for a local file.
            throw new CeleriacConfigurationException($"The URL '{Mask(url)}' has a host; a local file is written {url.Scheme}:///relative/path or {url.Scheme}:////absolute/path.");
        }

        string path = Uri.UnescapeDataString(rest[1..]);
        if (path.Length == 0)
        {
            throw new CeleriacConfigurationException($"The URL '{Mask(url)}' names no file.");
        }

        return Path.GetFullPath(path);
    }
}
