namespace Celeriac;

/// <summary>Parsing and safe display of broker and backend URLs.</summary>
public static class UrlText
{
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
        return Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) ? Mask(uri) : url;
    }

    /// <summary>Parses a broker or backend URL; throws <see cref="CeleriacConfigurationException"/> naming what is wrong.</summary>
    public static Uri Parse(string url, string what)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            throw new CeleriacConfigurationException($"The {what} URL is empty.");
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
