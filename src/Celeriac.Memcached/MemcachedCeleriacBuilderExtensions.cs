using Celeriac.Memcached;

namespace Celeriac;

/// <summary><c>UseMemcached(...)</c>: Celery's cache result backend on memcached.</summary>
public static class MemcachedCeleriacBuilderExtensions
{
    private static readonly string[] s_schemes = ["cache+memcached", "cache+pylibmc"];

    /// <summary>
    /// Keeps results in memcached at <paramref name="url"/> (<c>cache+memcached://host:11211/</c>, as Celery's). The
    /// provider is registered explicitly.
    /// </summary>
    public static CeleriacBuilder UseMemcached(this CeleriacBuilder builder, string url = "cache+memcached://127.0.0.1:11211/")
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseResultBackend(new MemcachedProvider(), url, s_schemes);
    }
}
