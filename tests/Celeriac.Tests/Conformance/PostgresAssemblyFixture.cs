using Celeriac.TestServers;

[assembly: AssemblyFixture(typeof(Celeriac.Tests.Conformance.PostgresAssemblyFixture))]

namespace Celeriac.Tests.Conformance;

/// <summary>
/// One real PostgreSQL server for the worker suites that run on every broker (<c>TestBrokers</c>); tests keep apart by
/// database. It starts when a test first asks for it, and the assembly fixture stops it at the end of the run.
/// </summary>
public sealed class PostgresAssemblyFixture : IAsyncDisposable
{
    // Started without a test's token: the server outlives the test that happens to ask first.
    private static readonly Lazy<Task<PostgresServer>> s_server = new(() => PostgresServer.StartAsync());

    /// <summary>The server, started on first call.</summary>
    public static Task<PostgresServer> ServerAsync() => s_server.Value;

    /// <summary>The URL of a new database of the shared server.</summary>
    public static async Task<string> NewDatabaseUrlAsync()
    {
        PostgresServer server = await ServerAsync();
        return server.Url(await server.CreateDatabaseAsync());
    }

    public async ValueTask DisposeAsync()
    {
        if (s_server.IsValueCreated && s_server.Value.IsCompletedSuccessfully)
        {
            await (await s_server.Value).DisposeAsync();
        }
    }
}
