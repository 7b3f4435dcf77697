using Celeriac.Results;
using Celeriac.Sqlite;
using Celeriac.Transport;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Tests.Conformance;

public sealed class SqliteTransportConformanceTests : TransportConformanceTests
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-sqlite-").FullName;

    private string FilePath => Path.Join(_directory, "broker.db");

    protected override ValueTask<ITransport> CreateTransportAsync(TransportSetup setup)
    {
        var options = new TransportOptions
        {
            Url = new Uri("sqlite:///" + FilePath),
            VisibilityTimeout = setup.VisibilityTimeout ?? TimeSpan.FromHours(1),
        };

        // A peer has its own store (connection and writer), as a second process has.
        return ValueTask.FromResult<ITransport>(setup.Peer
            ? new SqliteTransport(options, SqliteStore.OpenPrivate(FilePath, NullLoggerFactory.Instance))
            : new SqliteTransport(options));
    }

    protected override ValueTask KillAsync(ITransport transport)
    {
        ((SqliteTransport)transport).Kill();
        return ValueTask.CompletedTask;
    }

    protected override ValueTask DisposeStoreAsync()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}

public sealed class SqliteResultBackendConformanceTests : ResultBackendConformanceTests
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-sqlite-").FullName;

    private string FilePath => Path.Join(_directory, "results.db");

    protected override ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup)
    {
        var options = new ResultBackendOptions
        {
            Url = new Uri("sqlite:///" + FilePath),
            TimeProvider = setup.Time ?? TimeProvider.System,
            ResultExpires = setup.Expires ?? TimeSpan.FromDays(1),
            PollInterval = TimeSpan.FromMilliseconds(100),
        };
        return ValueTask.FromResult<IResultBackend>(setup.Peer
            ? new SqliteResultBackend(options, SqliteStore.OpenPrivate(FilePath, NullLoggerFactory.Instance))
            : new SqliteResultBackend(options));
    }

    protected override ValueTask<byte[]?> ReadRawAsync(string key)
    {
        using var connection = new SqliteConnection("Data Source=" + FilePath);
        connection.Open();
        using SqliteCommand get = connection.CreateCommand();
        get.CommandText = "SELECT value FROM kv WHERE key = $key";
        get.Parameters.AddWithValue("$key", key);
        return ValueTask.FromResult((byte[]?)get.ExecuteScalar());
    }

    protected override ValueTask DisposeStoreAsync()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}
