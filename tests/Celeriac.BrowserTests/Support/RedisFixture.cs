using Celeriac.TestServers;

[assembly: AssemblyFixture(typeof(Celeriac.BrowserTests.Support.RedisFixture))]

namespace Celeriac.BrowserTests.Support;

/// <summary>One real redis-server for the test assembly; each test takes a database of its own.</summary>
public sealed class RedisFixture : IAsyncLifetime
{
    private int _next;
    private RedisServer? _server;

    /// <summary>The server.</summary>
    public RedisServer Server => _server ?? throw new InvalidOperationException("not started");

    /// <inheritdoc />
    public async ValueTask InitializeAsync() => _server = await RedisServer.StartAsync();

    /// <summary>
    /// A database no other test of this run uses (1..15; 0 stays unused): events and control travel on channels
    /// prefixed by the database, so tests on different databases never see each other's workers or tasks.
    /// </summary>
    public async Task<int> TakeDatabaseAsync()
    {
        int db = Interlocked.Increment(ref _next);
        Assert.True(db <= 15, "more browser tests than redis databases: give the new tests a server of their own");
        await Server.CliAsync("-n", db.ToString(System.Globalization.CultureInfo.InvariantCulture), "FLUSHDB");
        return db;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
