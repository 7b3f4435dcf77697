using Celeriac.Database;
using Celeriac.Results;
using Celeriac.TestServers;

namespace Celeriac.Tests.Conformance;

/// <summary>One real PostgreSQL server for a test class; each test has its own database.</summary>
public sealed class PostgresDatabaseFixture : IAsyncLifetime
{
    public PostgresServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await PostgresServer.StartAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>One real MariaDB server for a test class; each test has its own database.</summary>
public sealed class MariaDbFixture : IAsyncLifetime
{
    public MariaDbServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await MariaDbServer.StartAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The database backend's shared part: backends on one URL, the test's clock and expiry.</summary>
public abstract class DatabaseResultBackendConformanceTests : ResultBackendConformanceTests
{
    /// <summary>Results are pickled: the value comes back, its JSON whitespace does not.</summary>
    protected override bool KeepsResultText => false;

    /// <summary>The URL of this test's database.</summary>
    protected abstract ValueTask<string> UrlAsync();

    protected override async ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup)
    {
        var options = new ResultBackendOptions
        {
            Url = new Uri(await UrlAsync()),
            TimeProvider = setup.Time ?? TimeProvider.System,
            ResultExpires = setup.Expires ?? TimeSpan.FromDays(1),
        };
        return new DatabaseResultBackend(options);
    }
}

public sealed class PostgresDatabaseResultBackendConformanceTests(PostgresDatabaseFixture pg) : DatabaseResultBackendConformanceTests, IClassFixture<PostgresDatabaseFixture>
{
    private string? _database;

    protected override async ValueTask<string> UrlAsync() =>
        pg.Server.Url(_database ??= await pg.Server.CreateDatabaseAsync(Ct), "db+postgresql");
}

public sealed class MariaDbDatabaseResultBackendConformanceTests(MariaDbFixture mariadb) : DatabaseResultBackendConformanceTests, IClassFixture<MariaDbFixture>
{
    private string? _database;

    protected override async ValueTask<string> UrlAsync() =>
        mariadb.Server.Url(_database ??= await mariadb.Server.CreateDatabaseAsync(Ct), "db+mariadb");
}

public sealed class SqliteDatabaseResultBackendConformanceTests : DatabaseResultBackendConformanceTests
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-db-").FullName;

    protected override ValueTask<string> UrlAsync() => ValueTask.FromResult("db+sqlite:///" + Path.Combine(_directory, "results.db"));

    protected override ValueTask DisposeStoreAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}
