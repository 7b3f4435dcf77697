using Celeriac;
using Celeriac.Memcached;

[assembly: CeleriacProvider(typeof(MemcachedProvider))]

namespace Celeriac.Memcached;

/// <summary>Registers <c>cache+memcached://</c> and <c>cache+pylibmc://</c> as result backends (Celery's cache backend on memcached).</summary>
public sealed class MemcachedProvider : ICeleriacProvider
{
    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        foreach (string scheme in (string[])["cache+memcached", "cache+pylibmc"])
        {
            registry.AddResultBackend(scheme, static o => new MemcachedResultBackend(o));
        }
    }
}
