using Celeriac;
using Celeriac.Database;

[assembly: CeleriacProvider(typeof(DatabaseProvider))]

namespace Celeriac.Database;

/// <summary>Registers Celery's <c>db+...://</c> result backends.</summary>
public sealed class DatabaseProvider : ICeleriacProvider
{
    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
    }
}
