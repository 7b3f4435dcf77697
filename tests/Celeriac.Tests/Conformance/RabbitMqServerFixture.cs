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
    private const int SparesPerCall = 8;
    private readonly SemaphoreSlim _spareGate = new(1, 1);
    private readonly Queue<string> _spares = new();

    /// <summary>The node, started on first call.</summary>
    public Task<RabbitMqServer> ServerAsync() => _server.Value;

    /// <summary>A new vhost of the test's own, where guest may do everything.</summary>
    /// <remarks>
    /// Each rabbitmqctl call boots an Erlang VM (about 0.7 s and a core); with a vhost per test, add_vhost and
    /// set_permissions per test cost the suite minutes. So one <c>rabbitmqctl eval</c> makes several at once, and
    /// tests take them one by one.
    /// </remarks>
    public async Task<string> NewVhostAsync()
    {
        RabbitMqServer server = await ServerAsync();
        await _spareGate.WaitAsync();
        try
        {
            if (_spares.Count == 0)
            {
                string[] names = [.. Enumerable.Range(0, SparesPerCall).Select(_ => "t-" + Guid.NewGuid().ToString("N")[..12])];
                const string User = "<<\"celeriac-tests\">>";
                string eval = string.Join(", ", names.Select(n =>
                    $"ok = rabbit_vhost:add(<<\"{n}\">>, {User}), " +
                    $"ok = rabbit_auth_backend_internal:set_permissions(<<\"guest\">>, <<\"{n}\">>, <<\".*\">>, <<\".*\">>, <<\".*\">>, {User})")) + ", done.";
                string printed = await server.CtlAsync("eval", eval);
                Assert.Contains("done", printed, StringComparison.Ordinal);
                foreach (string n in names)
                {
                    _spares.Enqueue(n);
                }
            }

            return _spares.Dequeue();
        }
        finally
        {
            _spareGate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server.IsValueCreated && _server.Value.IsCompletedSuccessfully)
        {
            await (await _server.Value).DisposeAsync();
        }
    }
}
