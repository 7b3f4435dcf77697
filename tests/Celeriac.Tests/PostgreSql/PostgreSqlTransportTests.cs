using Celeriac.PostgreSql;
using Celeriac.Tests.Cli;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;
using Celeriac.Transport;
using Npgsql;

namespace Celeriac.Tests.PostgreSql;

/// <summary>What the PostgreSQL broker adds to the conformance suite: its URL, its schema and migrate, its wake-ups.</summary>
public sealed class PostgreSqlTransportTests(PostgresServerFixture postgres) : IClassFixture<PostgresServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static TransportMessage Message(string id) => new()
    {
        Body = "[[1, 2], {}, {}]"u8.ToArray(),
        Headers = new Dictionary<string, object?>(StringComparer.Ordinal) { ["id"] = id, ["task"] = "tests.t" },
    };

    [Fact]
    public void ConnectionString_FromUrl_HasUserPasswordHostPortDatabaseAndOptions()
    {
        var b = new NpgsqlConnectionStringBuilder(PgDatabase.ConnectionStringOf(new Uri("postgresql://u%40x:p%3Aw@db.example:6543/jobs?sslmode=Require")));

        Assert.Equal(("u@x", "p:w", "db.example", 6543, "jobs", SslMode.Require), (b.Username, b.Password, b.Host, b.Port, b.Database, b.SslMode));
        var defaults = new NpgsqlConnectionStringBuilder(PgDatabase.ConnectionStringOf(new Uri("postgres://alice@localhost")));
        Assert.Equal((5432, "alice"), (defaults.Port, defaults.Database));
    }

    [Fact]
    public void ConnectionString_UnknownOption_IsAConfigurationErrorWithoutThePassword()
    {
        var e = Assert.Throws<CeleriacConfigurationException>(() => PgDatabase.ConnectionStringOf(new Uri("postgresql://u:secret@h/db?nonsense=1")));

        Assert.Contains("nonsense", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Registry_PostgresAndPostgresqlSchemes_CreateTheTransport()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = postgres.Server.Url(postgres.Database, scheme: "postgres") });

        Assert.IsType<PostgreSqlTransport>(app.Transport);
    }

    [Fact]
    public async Task DefaultResultBackend_CelerysTablesOnTheSameDatabase_ResultsRoundTripThere()
    {
        string db = await postgres.Server.CreateDatabaseAsync(Ct);
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = postgres.Server.Url(db), DefaultQueue = "defaults" });
        app.Task("pg.add", (int x, int y) => x + y);
        await using RunningWorker w = await RunningWorker.StartAsync(app);

        AsyncResult result = await app.SendTaskAsync("pg.add", [2, 3], ct: Ct);

        Assert.Equal("db+" + postgres.Server.Url(db), app.EffectiveResultBackendUrl);
        Assert.Equal(5, await result.GetAsync<int>(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal("SUCCESS", await postgres.Server.ScalarAsync($"SELECT status FROM celery_taskmeta WHERE task_id = '{result.Id}'", db, Ct));
    }

    [Fact]
    public async Task Migrate_Cli_CreatesTheTablesAndPrintSqlShowsTheScript()
    {
        string database = await postgres.Server.CreateDatabaseAsync(Ct);
        string url = postgres.Server.Url(database);

        CliRun printed = await CliRun.RunAsync(["migrate", "-b", url, "--print-sql"], ct: Ct);
        Assert.Equal(0, printed.ExitCode);
        Assert.Contains("CREATE TABLE IF NOT EXISTS celeriac_messages", printed.Out, StringComparison.Ordinal);
        Assert.IsType<DBNull>(await postgres.Server.ScalarAsync("SELECT to_regclass('celeriac_messages')::text", database, Ct));

        CliRun run = await CliRun.RunAsync(["migrate", "-b", url], ct: Ct);
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal("celeriac_messages", await postgres.Server.ScalarAsync("SELECT to_regclass('celeriac_messages')::text", database, Ct));

        // Again, as a deploy script would: nothing to do, no error.
        Assert.Equal(0, (await CliRun.RunAsync(["migrate", "-b", url], ct: Ct)).ExitCode);
    }

    [Fact]
    public async Task Migrate_BrokerWithoutTables_SaysNothingToMigrate()
    {
        CliRun run = await CliRun.RunAsync(["migrate", "-b", CliRun.NewBroker()], ct: Ct);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Nothing to migrate", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FirstUse_TwoTransportsAtOnce_BothCreateTheSchemaWithoutError()
    {
        string url = postgres.Server.Url(await postgres.Server.CreateDatabaseAsync(Ct));
        PostgreSqlTransport[] transports = [.. Enumerable.Range(0, 4).Select(_ => new PostgreSqlTransport(new TransportOptions { Url = new Uri(url) }))];
        try
        {
            await Task.WhenAll(transports.Select((t, i) => t.PublishAsync("", "q", [Message("m" + i)], Ct).AsTask()));

            Assert.Equal(4, await transports[0].GetQueueLengthAsync("q", Ct));
        }
        finally
        {
            foreach (PostgreSqlTransport t in transports)
            {
                await t.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Consumer_ServerRestarted_ReconnectsAndDeliversWhatWasPublishedMeanwhile()
    {
        // A server of its own: this test stops it.
        await using var server = await Celeriac.TestServers.PostgresServer.StartAsync(ct: Ct);
        string url = server.Url(await server.CreateDatabaseAsync(Ct));
        await using var consumer = new PostgreSqlTransport(new TransportOptions { Url = new Uri(url) });
        await using var publisher = new PostgreSqlTransport(new TransportOptions { Url = new Uri(url) });
        await publisher.PublishAsync("", "q", [Message("before")], Ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(60));
        await using IAsyncEnumerator<Delivery> deliveries = consumer.ConsumeAsync(new ConsumeOptions { Queues = ["q"] }, stop.Token).GetAsyncEnumerator(stop.Token);
        Assert.True(await deliveries.MoveNextAsync());
        await deliveries.Current.AckAsync(Ct);

        await server.StopAsync();
        await server.StartAgainAsync(Ct);
        await publisher.PublishAsync("", "q", [Message("after")], Ct);

        Assert.True(await deliveries.MoveNextAsync());
        Assert.Equal("after", deliveries.Current.Message!.Headers["id"]);
    }

    [Fact]
    public async Task EtaTask_LongerThanTheVisibilityTimeout_RunsOnceWhileAnotherWorkerWaits()
    {
        // Two workers on one queue, a lease of 1 s, a task due in 3 s: the holder keeps its lease alive while the task
        // waits in its timer (no row is locked meanwhile), so the other never gets it.
        string url = postgres.Server.Url(await postgres.Server.CreateDatabaseAsync(Ct));
        string results = Path.Join(Path.GetTempPath(), "celeriac-pg-eta-" + Guid.NewGuid().ToString("N") + ".db");
        var runs = new System.Collections.Concurrent.ConcurrentBag<string>();
        CeleriacApp NewApp(string node)
        {
            var app = new CeleriacApp(new CeleriacOptions
            {
                BrokerUrl = url,
                ResultBackend = "sqlite:///" + results,
                DefaultQueue = "eta",
                NodeName = node + "@test",
                VisibilityTimeout = TimeSpan.FromSeconds(1),
                Concurrency = 2,
            });
            app.Task("pg.once", (string token) =>
            {
                runs.Add(node + ":" + token);
                return token;
            });
            return app;
        }

        try
        {
            await using CeleriacApp first = NewApp("first");
            await using CeleriacApp second = NewApp("second");
            await using RunningWorker a = await RunningWorker.StartAsync(first);
            await using RunningWorker b = await RunningWorker.StartAsync(second);

            AsyncResult result = await first.SendTaskAsync("pg.once", ["eta"], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(3) }, ct: Ct);

            // A lapsed lease would have handed the message to the other worker 1 s after the take, before it was due.
            Assert.Equal("eta", await result.GetAsync<string>(TimeSpan.FromSeconds(15), Ct));
            await Task.Delay(TimeSpan.FromSeconds(1), Ct);
            Assert.Single(runs);
            Assert.Equal(0L, await postgres.Server.ScalarAsync("SELECT count(*) FROM celeriac_messages", url[(url.LastIndexOf('/') + 1)..], Ct));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            File.Delete(results);
        }
    }

    [Fact]
    public async Task Fanout_MessageLargerThanANotifyPayload_ReachesSubscribersThroughARow()
    {
        string url = postgres.Server.Url(await postgres.Server.CreateDatabaseAsync(Ct));
        await using var subscriber = new PostgreSqlTransport(new TransportOptions { Url = new Uri(url) });
        await using var publisher = new PostgreSqlTransport(new TransportOptions { Url = new Uri(url) });
        var got = System.Threading.Channels.Channel.CreateUnbounded<TransportMessage>();
        await using IAsyncDisposable subscription = await subscriber.SubscribeAsync("celery.pidbox", m => got.Writer.WriteAsync(m), ct: Ct);
        byte[] big = System.Text.Encoding.UTF8.GetBytes("[[\"" + new string('x', 20_000) + "\"], {}, {}]");

        await publisher.PublishAsync("celery.pidbox", "", [Message("small"), Message("big") with { Body = big }, Message("after")], Ct);

        using var within = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        within.CancelAfter(TimeSpan.FromSeconds(10));
        TransportMessage[] received = [await got.Reader.ReadAsync(within.Token), await got.Reader.ReadAsync(within.Token), await got.Reader.ReadAsync(within.Token)];
        Assert.Equal(["small", "big", "after"], received.Select(m => (string)m.Headers["id"]!));
        Assert.Equal(big, received[1].Body.ToArray());
        Assert.Equal(1L, await postgres.Server.ScalarAsync("SELECT count(*) FROM celeriac_fanout", url[(url.LastIndexOf('/') + 1)..], Ct));
    }

    [Fact]
    public async Task Fanout_TopicBindingKey_NarrowsWhatASubscriberGets()
    {
        string url = postgres.Server.Url(await postgres.Server.CreateDatabaseAsync(Ct));
        await using var transport = new PostgreSqlTransport(new TransportOptions { Url = new Uri(url) });
        var workerEvents = System.Threading.Channels.Channel.CreateUnbounded<string>();
        var all = System.Threading.Channels.Channel.CreateUnbounded<string>();
        await using IAsyncDisposable gossip = await transport.SubscribeAsync("celeryev", m => workerEvents.Writer.WriteAsync((string)m.Headers["id"]!), new SubscriberBinding("gossip", "worker.#"), Ct);
        await using IAsyncDisposable monitor = await transport.SubscribeAsync("celeryev", m => all.Writer.WriteAsync((string)m.Headers["id"]!), ct: Ct);

        await transport.PublishAsync("celeryev", "task.succeeded", [Message("task")], Ct);
        await transport.PublishAsync("celeryev", "worker.heartbeat", [Message("heartbeat")], Ct);

        using var within = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        within.CancelAfter(TimeSpan.FromSeconds(10));
        Assert.Equal(["task", "heartbeat"], [await all.Reader.ReadAsync(within.Token), await all.Reader.ReadAsync(within.Token)]);

        // The monitor has both, and both went out in order: had the gossip subscriber got the task event, it would be first.
        Assert.Equal("heartbeat", await workerEvents.Reader.ReadAsync(within.Token));
        Assert.False(workerEvents.Reader.TryRead(out _));
    }
}
