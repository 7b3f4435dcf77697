using Celeriac;
using Celeriac.Beat;
using Celeriac.Sqlite;

[assembly: CeleriacProvider(typeof(SqliteProvider))]

namespace Celeriac.Sqlite;

/// <summary>Registers <c>sqlite://</c> as a broker, a result backend and a beat store.</summary>
public sealed class SqliteProvider : ICeleriacProvider
{
    /// <summary>The URL scheme.</summary>
    public const string Scheme = "sqlite";

    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.AddTransport(Scheme, static o => new SqliteTransport(o));
        registry.AddResultBackend(Scheme, static o => new SqliteResultBackend(o));
        registry.AddExtension<IBeatStore>(Scheme, static (url, app) => new SqliteBeatStore(UrlText.FilePath(url), app.Options.TimeProvider));
    }
}
