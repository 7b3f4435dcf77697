using Celeriac;
using Celeriac.Beat;
using Celeriac.Redis;

[assembly: CeleriacProvider(typeof(RedisProvider))]

namespace Celeriac.Redis;

/// <summary>Registers <c>redis://</c>, <c>rediss://</c> and <c>redis+socket://</c> as brokers, result backends and beat stores.</summary>
public sealed class RedisProvider : ICeleriacProvider
{
    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        foreach (string scheme in (string[])["redis", "rediss", "redis+socket"])
        {
            registry.AddTransport(scheme, static o => new RedisTransport(o));
            registry.AddResultBackend(scheme, static o => new RedisResultBackend(o));
            registry.AddExtension<IBeatStore>(scheme, static (url, app) => new RedisBeatStore(url, app.Options.LoggerFactory));
        }
    }
}
