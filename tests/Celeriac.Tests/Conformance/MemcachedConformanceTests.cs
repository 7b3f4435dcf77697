using Celeriac.Memcached;
using Celeriac.Results;
using Celeriac.TestServers;

namespace Celeriac.Tests.Conformance;

/// <summary>One real memcached for a test class; each test starts from an empty server.</summary>
public sealed class MemcachedServerFixture : IAsyncLifetime
{
    public MemcachedServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await MemcachedServer.StartAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

public sealed class MemcachedResultBackendConformanceTests(MemcachedServerFixture memcached) : ResultBackendConformanceTests, IClassFixture<MemcachedServerFixture>
{
    protected override bool ExpiresOnServerClock => true;

    protected override ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup) =>
        ValueTask.FromResult<IResultBackend>(new MemcachedResultBackend(new ResultBackendOptions
        {
            Url = new Uri(memcached.Server.Url()),
            ResultExpires = setup.Expires ?? TimeSpan.FromDays(1),
            PollInterval = TimeSpan.FromMilliseconds(100),
            TimeProvider = setup.Time ?? TimeProvider.System,
        }));

    protected override async ValueTask<byte[]?> ReadRawAsync(string key) => (await memcached.Server.GetRawAsync(key, Ct))?.Data;

    protected override async ValueTask DisposeStoreAsync() => await memcached.Server.FlushAsync();
}

/// <summary>A memcached that never answered: the caller hears so after the connect timeout, not the outage patience.</summary>
public sealed class MemcachedNeverReachedTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GetAsync_NothingListens_BrokerUnreachableAfterTheConnectTimeout()
    {
        int port = FreePort.Next();
        await using var backend = new MemcachedResultBackend(new ResultBackendOptions { Url = new Uri($"cache+memcached://127.0.0.1:{port}/"), ConnectTimeout = TimeSpan.FromSeconds(1) });
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<BrokerUnreachableException>(() => backend.GetAsync(Guid.NewGuid().ToString(), Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        Assert.Contains($"cache+memcached://127.0.0.1:{port}/", error.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(1), error.Timeout);
    }
}
