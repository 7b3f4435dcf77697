using Celeriac.Memcached;
using Celeriac.Results;

namespace Celeriac.Tests.Memcached;

public sealed class MemcachedEndpointTests
{
    [Theory]
    [InlineData("cache+memcached://127.0.0.1:11211/", "127.0.0.1:11211")]
    [InlineData("cache+memcached://127.0.0.1:11211;127.0.0.1:11212/", "127.0.0.1:11211;127.0.0.1:11212")]
    [InlineData("cache+pylibmc://cache.local/", "cache.local:11211")]
    [InlineData("cache+memcached://h1:1;h2;[::1]:3//", "h1:1;h2:11211;[::1]:3")]
    [InlineData("cache+memcached://h1:1?memcached_timeout=2", "h1:1")]
    public void Parse_CeleryServerList_ServersInOrder(string url, string servers)
    {
        MemcachedEndpoint endpoint = MemcachedEndpoint.Parse(UrlText.Parse(url, "result backend"));

        Assert.Equal(servers, string.Join(';', endpoint.Servers));
    }

    [Theory]
    [InlineData("cache+memcached://h1:port/", "'h1:port' that is not host or host:port")]
    [InlineData("cache+memcached://h1:70000/", "'h1:70000' that is not host or host:port")]
    [InlineData("cache+memcached://;/", "names no memcached server")]
    public void Parse_BadServer_ClearError(string url, string message)
    {
        var e = Assert.Throws<CeleriacConfigurationException>(() => MemcachedEndpoint.Parse(UrlText.Parse(url, "result backend")));

        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cache+memcached://127.0.0.1:11211;127.0.0.1:11212/")]
    [InlineData("cache+pylibmc://127.0.0.1:11211/")]
    public async Task App_CacheUrl_OpensTheMemcachedBackendWithoutConnecting(string url)
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://", ResultBackend = url });

        IResultBackend backend = app.ResultBackend;

        Assert.IsType<MemcachedResultBackend>(backend);
        Assert.Equal(url.Replace("cache+pylibmc", "cache+memcached", StringComparison.Ordinal), backend.ToString());
    }

    [Fact]
    public async Task App_BadSetting_ClearError()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://", ResultBackend = "cache+memcached://127.0.0.1:1/?memcached_timeout=soon" });

        var e = Assert.Throws<CeleriacConfigurationException>(() => app.ResultBackend);

        Assert.Contains("memcached_timeout='soon' is not a positive number of seconds", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Exptime_ShortAndLongAndNone_AsMemcachedReadsThem()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

        Assert.Equal(0, MemcachedResultBackend.Exptime(null, time));
        Assert.Equal(1, MemcachedResultBackend.Exptime(TimeSpan.FromMilliseconds(300), time));
        Assert.Equal(86_400, MemcachedResultBackend.Exptime(TimeSpan.FromDays(1), time));
        Assert.Equal(2_592_000, MemcachedResultBackend.Exptime(TimeSpan.FromDays(30), time));
        Assert.Equal(time.GetUtcNow().ToUnixTimeSeconds() + 2_592_001, MemcachedResultBackend.Exptime(TimeSpan.FromDays(30) + TimeSpan.FromSeconds(1), time));
        Assert.Equal(-1, MemcachedResultBackend.Exptime(TimeSpan.Zero, time));
    }

    [Fact]
    public void OneAtATime_KnownValues_AreLibmemcachedsHash()
    {
        // hashkit_one_at_a_time("a") and of a byte above 0x7f, which libmemcached reads as a signed char.
        Assert.Equal(0xca2e9442u, MemcachedClient.OneAtATime("a"u8));
        Assert.NotEqual(MemcachedClient.OneAtATime([0xe9]), MemcachedClient.OneAtATime([0x69]));
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("line\nfeed")]
    [InlineData("")]
    public void CheckKey_KeyTheProtocolCannotCarry_ClearError(string key)
    {
        var e = Assert.Throws<ArgumentException>(() => MemcachedClient.CheckKey(key));

        Assert.Contains("memcached keys", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CheckKey_TooLong_ClearError()
    {
        var e = Assert.Throws<ArgumentException>(() => MemcachedClient.CheckKey(KeyValueResultBackend.TaskKeyPrefix + new string('x', 240)));

        Assert.Contains("memcached keys are 1 to 250 bytes", e.Message, StringComparison.Ordinal);
    }
}
