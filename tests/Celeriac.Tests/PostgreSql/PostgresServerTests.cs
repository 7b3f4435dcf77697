using Celeriac.TestServers;
using Xunit;

namespace Celeriac.Tests.PostgreSql;

/// <summary>The test fixture's server: it starts as a non-root user, isolates by database and restarts on its folder.</summary>
public sealed class PostgresServerTests
{
    [Fact]
    public async Task Starts_CreatesDatabases_RestartsWithItsData()
    {
        await using PostgresServer server = await PostgresServer.StartAsync(ct: TestContext.Current.CancellationToken);
        string db = await server.CreateDatabaseAsync(TestContext.Current.CancellationToken);
        await server.ExecuteAsync("CREATE TABLE t (v int); INSERT INTO t VALUES (42)", db, TestContext.Current.CancellationToken);

        await server.StopAsync();
        Assert.False(server.IsRunning);
        await server.StartAgainAsync(TestContext.Current.CancellationToken);

        Assert.Equal(42, await server.ScalarAsync("SELECT v FROM t", db, TestContext.Current.CancellationToken));
        Assert.Equal("postgres", await server.ScalarAsync("SELECT current_user", db, TestContext.Current.CancellationToken));
    }
}
