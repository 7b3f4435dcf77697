using Celeriac.PostgreSql;

namespace Celeriac;

/// <summary><c>UsePostgreSql(...)</c>: PostgreSQL as the broker.</summary>
public static class PostgreSqlCeleriacBuilderExtensions
{
    /// <summary>
    /// Uses the PostgreSQL database at <paramref name="url"/> (<c>postgresql://user:password@host:5432/db</c>) as the
    /// broker. With no result backend set, results go to Celery's tables in the same database (<c>db+postgresql://</c>,
    /// the <c>Celeriac.Database</c> package; a trimmed app also calls its <c>UseDatabaseBackend</c>).
    /// </summary>
    public static CeleriacBuilder UsePostgreSql(this CeleriacBuilder builder, string url)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseBroker(new PostgreSqlProvider(), url, PostgreSqlProvider.Schemes);
    }
}
