namespace Celeriac.Dashboard.Store;

/// <summary>
/// Opens a store by URL: <c>sqlite:///path</c> (relative to the working directory; <c>sqlite:////abs</c> absolute),
/// <c>redis://host:port/db[?prefix=P]</c>, <c>postgresql://user:pass@host:port/db</c> or <c>memory://</c>.
/// </summary>
public static class DashboardStores
{
    /// <summary>The default URL: a SQLite file in the working directory.</summary>
    public const string DefaultUrl = "sqlite:///celeriac-dashboard.db";

    /// <summary>Whether a URL names a store this build can open (for options validation).</summary>
    public static string? Validate(string? url)
    {
        if (string.IsNullOrEmpty(url))
        {
            return "the store URL is empty";
        }

        try
        {
            switch (url)
            {
                case not null when url.StartsWith("memory://", StringComparison.OrdinalIgnoreCase):
                    return null;
                case not null when url.StartsWith("sqlite:///", StringComparison.OrdinalIgnoreCase):
                    return url.Length > "sqlite:///".Length ? null : "the SQLite store URL names no file: write sqlite:///path";
                case not null when url.StartsWith("redis://", StringComparison.OrdinalIgnoreCase):
                    _ = RedisDashboardStore.ParseUrl(url);
                    return null;
                case not null when url.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase):
                    _ = PostgreSqlDashboardStore.ConnectionStringOf(url);
                    return null;
                default:
                    return $"unknown store URL '{url}': use sqlite:///path, redis://host:port/db, postgresql://user:pass@host:port/db or memory://";
            }
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
    }

    /// <summary>Opens the store a URL names; an <see cref="ArgumentException"/> for one it cannot.</summary>
    public static async Task<IDashboardStore> OpenAsync(string url, CancellationToken ct = default)
    {
        if (Validate(url) is { } error)
        {
            throw new ArgumentException(error, nameof(url));
        }

        if (url.StartsWith("memory://", StringComparison.OrdinalIgnoreCase))
        {
            return new MemoryDashboardStore();
        }

        if (url.StartsWith("redis://", StringComparison.OrdinalIgnoreCase))
        {
            return await RedisDashboardStore.OpenAsync(url, ct).ConfigureAwait(false);
        }

        if (url.StartsWith("postgres", StringComparison.OrdinalIgnoreCase))
        {
            return await PostgreSqlDashboardStore.OpenAsync(url, ct).ConfigureAwait(false);
        }

        string path = url["sqlite://".Length..];
        return await SqliteDashboardStore.OpenAsync(path[1..], ct).ConfigureAwait(false);
    }
}
