using Celeriac;
using Celeriac.PostgreSql;

[assembly: CeleriacProvider(typeof(PostgreSqlProvider))]

namespace Celeriac.PostgreSql;

/// <summary>
/// Registers <c>postgresql://</c> (and <c>postgres://</c>) as a broker, and its schema for <c>celeriac migrate</c>. Its
/// results go, unless configured otherwise, to Celery's database backend on the same database (<c>db+postgresql://</c>,
/// the Celeriac.Database package).
/// </summary>
public sealed class PostgreSqlProvider : ICeleriacProvider
{
    /// <summary>The URL schemes.</summary>
    public static readonly IReadOnlyList<string> Schemes = ["postgresql", "postgres"];

    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        foreach (string scheme in Schemes)
        {
            registry.AddTransport(scheme, static o => new PostgreSqlTransport(o), defaultResultBackend: "db+{broker}");
            registry.AddExtension<IStoreMigrator>(scheme, static (url, app) => new PostgreSqlMigrator(url, app.Options.LoggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance));
        }
    }
}
