using System.Text;
using Celeriac.Redis;
using Celeriac.Results;
using Celeriac.TestServers;
using Celeriac.Transport;

namespace Celeriac.Tests.Conformance;

/// <summary>One real redis-server for a test class; each test starts from an empty server.</summary>
public sealed class RedisServerFixture : IAsyncLifetime
{
    public RedisServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await RedisServer.StartAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

public sealed class RedisTransportConformanceTests(RedisServerFixture redis) : TransportConformanceTests, IClassFixture<RedisServerFixture>
{
    protected override ValueTask<ITransport> CreateTransportAsync(TransportSetup setup) =>
        ValueTask.FromResult<ITransport>(new RedisTransport(new TransportOptions
        {
            Url = new Uri(redis.Server.Url(0)),
            VisibilityTimeout = setup.VisibilityTimeout ?? TimeSpan.FromHours(1),
        }));

    protected override ValueTask KillAsync(ITransport transport) => ((RedisTransport)transport).KillAsync();

    protected override async ValueTask DisposeStoreAsync() => await redis.Server.CliAsync("FLUSHALL");
}

public sealed class RedisResultBackendConformanceTests(RedisServerFixture redis) : ResultBackendConformanceTests, IClassFixture<RedisServerFixture>
{
    protected override bool ExpiresOnServerClock => true;

    protected override ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup) =>
        ValueTask.FromResult<IResultBackend>(new RedisResultBackend(new ResultBackendOptions
        {
            Url = new Uri(redis.Server.Url(1)),
            ResultExpires = setup.Expires ?? TimeSpan.FromDays(1),
            PollInterval = TimeSpan.FromMilliseconds(100),
        }));

    protected override async ValueTask<byte[]?> ReadRawAsync(string key)
    {
        string value = (await redis.Server.CliAsync("-n", "1", "GET", key)).TrimEnd('\n');
        return value.Length == 0 ? null : Encoding.UTF8.GetBytes(value);
    }

    protected override async ValueTask DisposeStoreAsync() => await redis.Server.CliAsync("FLUSHALL");
}
