using Celeriac.PostgreSql;
using Celeriac.TestServers;
using Celeriac.Transport;

namespace Celeriac.Tests.Conformance;

/// <summary>
/// One real PostgreSQL server for a test class; each test takes a database of its own, or (worker suites, whose apps
/// are scoped by queue and node name) shares <see cref="Database"/>.
/// </summary>
public sealed class PostgresServerFixture : IAsyncLifetime
{
    public PostgresServer Server { get; private set; } = null!;

    /// <summary>A database made for the class.</summary>
    public string Database { get; private set; } = null!;

    /// <summary>The broker URL of <see cref="Database"/>.</summary>
    public string Url => Server.Url(Database);

    public async ValueTask InitializeAsync()
    {
        Server = await PostgresServer.StartAsync();
        Database = await Server.CreateDatabaseAsync();
    }

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

public sealed class PostgreSqlTransportConformanceTests(PostgresServerFixture postgres) : TransportConformanceTests, IClassFixture<PostgresServerFixture>
{
    private string? _database;

    protected override async ValueTask<ITransport> CreateTransportAsync(TransportSetup setup)
    {
        // Every transport has connections of its own, as another process would: a peer is just another transport.
        _database ??= await postgres.Server.CreateDatabaseAsync(Ct);
        return new PostgreSqlTransport(new TransportOptions
        {
            Url = new Uri(postgres.Server.Url(_database)),
            VisibilityTimeout = setup.VisibilityTimeout ?? TimeSpan.FromHours(1),
        });
    }

    protected override ValueTask KillAsync(ITransport transport) => ((PostgreSqlTransport)transport).KillAsync();
}
