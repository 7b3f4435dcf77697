using Celeriac.TestServers;

[assembly: AssemblyFixture(typeof(Celeriac.Tests.Conformance.RabbitMqServerFixture))]

namespace Celeriac.Tests.Conformance;

/// <summary>
/// One real rabbitmq-server for the whole test assembly (a node takes seconds and about 100 MB to start); tests keep
/// apart by vhost or queue name. The node starts when a test first asks for it, so runs of other tests never pay for it.
/// </summary>
public sealed class RabbitMqServerFixture : IAsyncDisposable
{
    // Started without a test's token: the node outlives the test that happens to ask first.
    private readonly Lazy<Task<RabbitMqServer>> _server = new(() => RabbitMqServer.StartAsync());

    /// <summary>The node, started on first call.</summary>
    public Task<RabbitMqServer> ServerAsync() => _server.Value;

    /// <summary>A new vhost named <paramref name="prefix"/> and a unique suffix, where guest may do everything.</summary>
    public async Task<string> NewVhostAsync(string prefix)
    {
        RabbitMqServer server = await ServerAsync();
        string vhost = prefix + "-" + Guid.NewGuid().ToString("N")[..8];
        await server.CtlAsync("add_vhost", vhost);
        await server.CtlAsync("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*");
        return vhost;
    }

    public async ValueTask DisposeAsync()
    {
        if (_server.IsValueCreated && _server.Value.IsCompletedSuccessfully)
        {
            await (await _server.Value).DisposeAsync();
        }
    }
}
