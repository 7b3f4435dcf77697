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
