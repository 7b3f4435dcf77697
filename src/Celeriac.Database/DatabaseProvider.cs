using Celeriac;
using Celeriac.Database;

[assembly: CeleriacProvider(typeof(DatabaseProvider))]

namespace Celeriac.Database;

/// <summary>Registers Celery's <c>db+...://</c> result backends (<see cref="DatabaseResultBackend"/>).</summary>
public sealed class DatabaseProvider : ICeleriacProvider
{
    /// <summary>The URL schemes, as Celery (SQLAlchemy) spells them.</summary>
    public static readonly IReadOnlyList<string> Schemes =
    [
        "db+postgresql", "db+postgresql+psycopg2", "db+postgres", "db+mysql", "db+mysql+pymysql", "db+mariadb", "db+mariadb+pymysql", "db+sqlite",
    ];

    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        foreach (string scheme in Schemes)
        {
            registry.AddResultBackend(scheme, static o => new DatabaseResultBackend(o));
        }
    }
}
