using Celeriac.Tests.Canvas;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.RemoteControl;
using Celeriac.Tests.Worker;
using Celeriac.Transport;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Celeriac.Tests.PostgreSql;

/// <summary>
/// The malformed-message proof on the PostgreSQL broker: raw rows are written into the message table by another
/// connection (and notified), exactly as a buggy or hostile producer would leave them.
/// </summary>
public sealed class PostgreSqlMalformedMessageTests(PostgresServerFixture postgres) : MalformedMessageTestsBase, IClassFixture<PostgresServerFixture>, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-pg-fuzz-").FullName;
    private readonly Dictionary<CeleriacApp, NpgsqlConnection> _connections = [];

    protected override async Task<CeleriacApp> CreateAppAsync(string name)
    {
        string database = await postgres.Server.CreateDatabaseAsync(TestContext.Current.CancellationToken);
        var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = postgres.Server.Url(database),
            ResultBackend = "sqlite:///" + Path.Join(_directory, name + ".db"),
            Concurrency = 4,
        });

        // Declaring creates the tables the raw rows go into.
        await app.Transport.DeclareQueueAsync(new QueueDeclaration("celery", "celery", "celery"), TestContext.Current.CancellationToken);
        var connection = new NpgsqlConnection(postgres.Server.ConnectionString(database));
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        lock (_connections)
        {
            _connections[app] = connection;
        }

        return app;
    }

    protected override async Task InjectRawAsync(CeleriacApp app, string queue, byte[] raw)
    {
        NpgsqlConnection connection;
        lock (_connections)
        {
            connection = _connections[app];
        }

        await using var insert = new NpgsqlCommand("WITH i AS (INSERT INTO celeriac_messages (queue, payload) VALUES ($1, $2) RETURNING queue) SELECT pg_notify('celeriac_messages', queue) FROM i", connection);
        insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
        insert.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = raw });
        await insert.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }

    public void Dispose()
    {
        foreach (NpgsqlConnection c in _connections.Values)
        {
            c.Dispose();
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}

public sealed class PostgreSqlRemoteControlTests(PostgresServerFixture postgres) : RemoteControlTests, IClassFixture<PostgresServerFixture>, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-pg-control-").FullName;

    // Celery mingles on Redis and AMQP only.
    protected override bool Mingles => false;

    protected override CeleriacOptions Options(string scope) =>
        new() { BrokerUrl = postgres.Url, ResultBackend = "sqlite:///" + Path.Join(_directory, scope + ".db"), DefaultQueue = "q" + scope };

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}

public sealed class PostgreSqlCanvasTests(PostgresServerFixture postgres) : CanvasTests, IClassFixture<PostgresServerFixture>, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-pg-canvas-").FullName;

    protected override CeleriacOptions Options(string scope) =>
        new() { BrokerUrl = postgres.Url, ResultBackend = "sqlite:///" + Path.Join(_directory, scope + ".db"), DefaultQueue = "q" + scope };

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}

public sealed class PostgreSqlWorkerLimitTests(PostgresServerFixture postgres) : WorkerLimitTests, IClassFixture<PostgresServerFixture>, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-pg-limits-").FullName;

    protected override CeleriacOptions Options(string scope) =>
        new() { BrokerUrl = postgres.Url, ResultBackend = "sqlite:///" + Path.Join(_directory, scope + ".db"), DefaultQueue = "q" + scope };

    protected override string ScopeOf(CeleriacApp app) => app.Options.DefaultQueue[1..];

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
