using Celeriac;
using Celeriac.Memcached;

[assembly: CeleriacProvider(typeof(MemcachedProvider))]

namespace Celeriac.Memcached;

/// <summary>Registers <c>cache+memcached://</c> as a result backend.</summary>
public sealed class MemcachedProvider : ICeleriacProvider
{
    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
    }
}
