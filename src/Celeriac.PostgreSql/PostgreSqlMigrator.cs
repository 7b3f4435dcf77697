using Microsoft.Extensions.Logging;

namespace Celeriac.PostgreSql;

/// <summary>Creates the PostgreSQL broker's tables (<c>schema.sql</c>) for <c>celeriac migrate</c>.</summary>
internal sealed class PostgreSqlMigrator(Uri url, ILoggerFactory loggers) : IStoreMigrator
{
    private readonly PgDatabase _db = new(url, loggers.CreateLogger("Celeriac.PostgreSql"));

    public string Script => Schema.Script;

    public async ValueTask MigrateAsync(CancellationToken ct = default) => await _db.EnsureSchemaAsync(ct, always: true).ConfigureAwait(false);

    public ValueTask DisposeAsync() => _db.DisposeAsync();
}
