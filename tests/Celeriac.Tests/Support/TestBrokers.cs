using Celeriac.Tests.Conformance;
using Celeriac.TestServers;
using Microsoft.Data.Sqlite;

namespace Celeriac.Tests.Support;

/// <summary>
/// Apps with the Quickstart's tasks on a real broker, for worker tests that run the same on SQLite (a file of the
/// test's own), Redis (a random database of the fixture's server), RabbitMQ (a vhost of the test's own on the
/// assembly's node) and PostgreSQL (a database of the test's own on the assembly's server, results in Celery's tables
/// there); each app gets a queue of its own.
/// </summary>
/// <remarks>
/// On RabbitMQ results go back by <c>rpc://</c>, as Celery's users mostly run it: only the app that sent a task reads
/// its result. Where another app reads them, a test takes <see cref="SharedResultBackend"/>.
/// </remarks>
internal sealed class TestBrokers(RedisServer redis, RabbitMqServerFixture rabbit, string name) : IDisposable
{
    private readonly string _directory = System.IO.Directory.CreateTempSubdirectory("celeriac-" + name + "-").FullName;
    private Task<string>? _rabbitUrl;
    private Task<string>? _postgresUrl;

    /// <summary>The test's own folder (the SQLite file, state files), deleted on dispose.</summary>
    public string Directory => _directory;

    public static TheoryData<string> Names => ["sqlite", "redis", "rabbitmq", "postgresql"];

    /// <summary>
    /// The broker URL: one file per test on SQLite, one database of 15 on Redis, one vhost per test on RabbitMQ (a
    /// vhost keeps apart what queue names do not: broadcast commands, and the '&lt;node&gt;.celery.pidbox' queue that
    /// workers with the default node name would share, each taking only some of the commands).
    /// </summary>
    public Task<string> UrlAsync(string broker) => broker switch
    {
        "redis" => Task.FromResult(redis.Url(1 + Random.Shared.Next(15))),
        "rabbitmq" => _rabbitUrl ??= RabbitUrlAsync(),
        "postgresql" => _postgresUrl ??= PostgresAssemblyFixture.NewDatabaseUrlAsync(),
        _ => Task.FromResult("sqlite:///" + Path.Join(_directory, name + ".db")),
    };

    /// <summary>
    /// A result backend every app of the test can read: none on SQLite and Redis (the broker's store keeps results);
    /// on RabbitMQ, where <c>rpc://</c> sends each result to the sending app only, a random database of the Redis
    /// server, a common Celery setup.
    /// </summary>
    public string? SharedResultBackend(string broker) => broker == "rabbitmq" ? redis.Url(1 + Random.Shared.Next(15)) : null;

    public async Task<CeleriacApp> NewAppAsync(string broker, Action<CeleriacOptions>? configure = null)
    {
        var options = new CeleriacOptions
        {
            BrokerUrl = await UrlAsync(broker),
            DefaultQueue = name + "-" + Guid.NewGuid().ToString("N")[..8],
            Concurrency = 2,

            // Mingle waits a second for other workers' replies at each start on Redis and RabbitMQ; RemoteControlTests
            // test it.
            WithoutMingle = true,
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

    private async Task<string> RabbitUrlAsync()
    {
        string vhost = await rabbit.NewVhostAsync();
        return (await rabbit.ServerAsync()).Url(vhost);
    }
}
