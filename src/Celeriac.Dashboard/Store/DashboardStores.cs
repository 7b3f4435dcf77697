namespace Celeriac.Dashboard.Store;

/// <summary>Opens a store by URL: <c>sqlite:///path</c> (relative to the working directory; <c>sqlite:////abs</c> absolute) or <c>memory://</c>.</summary>
public static class DashboardStores
{
    /// <summary>The default URL: a SQLite file in the working directory.</summary>
    public const string DefaultUrl = "sqlite:///celeriac-dashboard.db";

    /// <summary>Whether a URL names a store this build can open (for options validation).</summary>
    public static string? Validate(string? url) => url switch
    {
        null or "" => "the store URL is empty",
        _ when url.StartsWith("memory://", StringComparison.OrdinalIgnoreCase) => null,
        _ when url.StartsWith("sqlite:///", StringComparison.OrdinalIgnoreCase) && url.Length > "sqlite:///".Length => null,
        _ when url.StartsWith("redis://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) =>
            $"the store '{url.Split(':')[0]}://' is not available yet: use sqlite:///path or memory://",
        _ => $"unknown store URL '{url}': use sqlite:///path or memory://",
    };

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

        string path = url["sqlite://".Length..];
        return await SqliteDashboardStore.OpenAsync(path[1..], ct).ConfigureAwait(false);
    }
}
