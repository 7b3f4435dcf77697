using Celeriac;
using Celeriac.PostgreSql;

[assembly: CeleriacProvider(typeof(PostgreSqlProvider))]

namespace Celeriac.PostgreSql;

/// <summary>Registers <c>postgresql://</c> as a broker.</summary>
public sealed class PostgreSqlProvider : ICeleriacProvider
{
    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
    }
}
