using Celeriac.Sqlite;

namespace Celeriac;

/// <summary><c>UseSqlite(...)</c>: the embedded default, a SQLite file as broker and result store.</summary>
public static class SqliteCeleriacBuilderExtensions
{
    private static readonly string[] s_schemes = [SqliteProvider.Scheme];

    /// <summary>
    /// Uses a SQLite file as broker and result store: <c>celeriac.db</c> in the working directory (the default), or
    /// <paramref name="pathOrUrl"/>, a file path or a <c>sqlite:///path</c> URL (<c>sqlite:////abs/path</c> for an
    /// absolute one, as Celery's). The provider is registered explicitly (no look-up by assembly name).
    /// </summary>
    public static CeleriacBuilder UseSqlite(this CeleriacBuilder builder, string? pathOrUrl = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        string url = pathOrUrl switch
        {
            null or "" => CeleriacOptions.DefaultUrl,
            _ when pathOrUrl.Contains("://", StringComparison.Ordinal) => pathOrUrl,
            _ => "sqlite:///" + pathOrUrl,
        };
        return builder.UseBroker(new SqliteProvider(), url, s_schemes);
    }
}
