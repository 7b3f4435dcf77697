using Celeriac.Tests.Worker;
using Celeriac.Transport;
using Microsoft.Data.Sqlite;

namespace Celeriac.Tests.Sqlite;

/// <summary>
/// The malformed-message proof on the SQLite broker: raw rows are written into the message table by another
/// connection, exactly as a buggy or hostile producer would leave them.
/// </summary>
public sealed class SqliteMalformedMessageTests : MalformedMessageTestsBase, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-sqlite-fuzz-").FullName;
    private readonly Dictionary<CeleriacApp, SqliteConnection> _connections = [];

    protected override async Task<CeleriacApp> CreateAppAsync(string name)
    {
        string file = Path.Join(_directory, name + ".db");
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "sqlite:///" + file, Concurrency = 4 });

        // Opening the transport creates the tables the raw rows go into.
        await app.Transport.DeclareQueueAsync(new QueueDeclaration("celery", "celery", "celery"), TestContext.Current.CancellationToken);
        var connection = new SqliteConnection("Data Source=" + file + ";Default Timeout=30");
        connection.Open();
        using (SqliteCommand pragma = connection.CreateCommand())
        {
            pragma.CommandText = "PRAGMA synchronous=OFF";
            pragma.ExecuteNonQuery();
        }

        lock (_connections)
        {
            _connections[app] = connection;
        }

        return app;
    }

    protected override Task InjectRawAsync(CeleriacApp app, string queue, byte[] raw)
    {
        SqliteConnection connection;
        lock (_connections)
        {
            connection = _connections[app];
        }

        using SqliteCommand insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO messages (queue, priority, payload) VALUES ($queue, 0, $payload)";
        insert.Parameters.AddWithValue("$queue", queue);
        insert.Parameters.AddWithValue("$payload", raw);
        insert.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        foreach (SqliteConnection c in _connections.Values)
        {
            c.Dispose();
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
