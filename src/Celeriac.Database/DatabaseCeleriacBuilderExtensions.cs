using Celeriac.Database;

namespace Celeriac;

/// <summary><c>UseDatabaseBackend(...)</c>: Celery's database result backend.</summary>
public static class DatabaseCeleriacBuilderExtensions
{
    /// <summary>
    /// Keeps results in Celery's <c>celery_taskmeta</c> tables at <paramref name="url"/> (<c>db+postgresql://...</c>,
    /// <c>db+mysql://...</c>, <c>db+sqlite:///path</c>, as Celery's). The provider is registered explicitly.
    /// </summary>
    public static CeleriacBuilder UseDatabaseBackend(this CeleriacBuilder builder, string url)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseResultBackend(new DatabaseProvider(), url, DatabaseProvider.Schemes);
    }
}
