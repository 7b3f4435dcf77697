using Celeriac.TestServers;
using Microsoft.Data.Sqlite;

namespace Celeriac.Tests.Support;

/// <summary>
/// Apps with the Quickstart's tasks on a real broker, for worker tests that run the same on SQLite (a file of the
/// test's own) and Redis (a random database of the fixture's server); each app gets a queue of its own.
/// </summary>
internal sealed class TestBrokers(RedisServer redis, string name) : IDisposable
{
    private readonly string _directory = System.IO.Directory.CreateTempSubdirectory("celeriac-" + name + "-").FullName;

    /// <summary>The test's own folder (the SQLite file, state files), deleted on dispose.</summary>
    public string Directory => _directory;

    public static TheoryData<string> Names => ["sqlite", "redis"];

    /// <summary>The broker URL: one file per test on SQLite, one database of 15 on Redis.</summary>
    public string Url(string broker) =>
        broker == "redis" ? redis.Url(1 + Random.Shared.Next(15)) : "sqlite:///" + Path.Join(_directory, name + ".db");

    public CeleriacApp NewApp(string broker, Action<CeleriacOptions>? configure = null)
    {
        var options = new CeleriacOptions
        {
            BrokerUrl = Url(broker),
            DefaultQueue = name + "-" + Guid.NewGuid().ToString("N")[..8],
            Concurrency = 2,
        };
        configure?.Invoke(options);
        var app = new CeleriacApp(options);
        app.AddTasksFromAssembly(typeof(Quickstart.Tasks).Assembly);
        return app;
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        System.IO.Directory.Delete(_directory, recursive: true);
    }
}
