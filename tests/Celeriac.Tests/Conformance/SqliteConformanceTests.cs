using Celeriac.Beat;
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

public sealed class SqliteBeatStoreConformanceTests : BeatStoreConformanceTests
{
    private const string Sqlite3 = "/usr/bin/sqlite3";
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-beat-").FullName;

    private string FilePath => Path.Join(_directory, "beat.db");

    // Each store has its own connection, as another process would.
    protected override IBeatStore CreateStore(TimeProvider time) => new SqliteBeatStore(FilePath, time);

    [Fact]
    public async Task LoadAsync_WhileAnotherConnectionHoldsAnUncommittedWrite_ReadsTheCommittedState()
    {
        IBeatStore store = NewStore();
        await store.SaveAsync(Interval("e"), Ct);

        using var writer = new SqliteConnection("Data Source=" + FilePath + ";Pooling=False");
        writer.Open();
        using SqliteTransaction tx = writer.BeginTransaction(deferred: false);
        using (SqliteCommand update = writer.CreateCommand())
        {
            update.Transaction = tx;
            update.CommandText = "UPDATE celeriac_beat_entries SET total_run_count = 99, definition = 'not json'";
            Assert.Equal(1, update.ExecuteNonQuery());
        }

        // WAL: the reader neither waits for the writer nor sees its uncommitted rows.
        Task<IReadOnlyList<BeatEntry>> load = NewStore().LoadAsync(Ct).AsTask();
        Assert.Same(load, await Task.WhenAny(load, Task.Delay(TimeSpan.FromSeconds(3), Ct)));
        BeatEntry e = Assert.Single(await load);
        Assert.Equal(0, e.TotalRunCount);
        tx.Rollback();
    }

    [Fact]
    public async Task FileOfAProcessKilledMidWrite_IsReadableAndWritable()
    {
        Assert.SkipUnless(File.Exists(Sqlite3), "sqlite3 (the CLI) plays the process killed mid-write.");
        IBeatStore store = NewStore();
        await store.SaveAsync(Interval("e"), Ct);
        Assert.True(await store.TryHoldLeaseAsync("beat-1", TimeSpan.FromMinutes(1), Ct));
        Assert.True(await store.TryRecordRunAsync("beat-1", "e", null, Time.GetUtcNow(), Ct));
        await store.DisposeAsync();

        // Another process begins a large write (a tiny page cache makes it spill uncommitted pages into the WAL) and
        // is killed with SIGKILL before it commits.
        var start = new System.Diagnostics.ProcessStartInfo(Sqlite3, [FilePath])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using (var sqlite = System.Diagnostics.Process.Start(start)!)
        {
            await sqlite.StandardInput.WriteLineAsync("""
                PRAGMA busy_timeout = 5000;
                PRAGMA cache_size = 1;
                BEGIN IMMEDIATE;
                UPDATE celeriac_beat_entries SET total_run_count = 99, definition = 'not json', last_run_at = NULL;
                DELETE FROM celeriac_beat_lease;
                CREATE TABLE junk (x BLOB);
                INSERT INTO junk WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) SELECT randomblob(4000) FROM c;
                .print ready
                """);
            await sqlite.StandardInput.FlushAsync(Ct);
            using var within = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            within.CancelAfter(TimeSpan.FromSeconds(30));
            string? line;
            do
            {
                // PRAGMAs print their values first.
                line = await sqlite.StandardOutput.ReadLineAsync(within.Token);
            }
            while (line is not null and not "ready");

            Assert.Equal("ready", line);
            Assert.True(new FileInfo(FilePath + "-wal").Length > 1_000_000, "the uncommitted write never reached the WAL");
            sqlite.Kill();
            await sqlite.WaitForExitAsync(Ct);
        }

        IBeatStore after = NewStore();
        BeatEntry e = Assert.Single(await after.LoadAsync(Ct));
        Assert.Equal(1, e.TotalRunCount);
        Assert.Equal(Time.GetUtcNow(), e.LastRunAt);

        // The lease survived (still beat-1's), and the file takes writes again.
        Assert.False(await after.TryHoldLeaseAsync("beat-2", TimeSpan.FromMinutes(1), Ct));
        Assert.True(await after.TryRecordRunAsync("beat-1", "e", e.LastRunAt, e.LastRunAt!.Value.AddSeconds(10), Ct));
        Assert.Equal(2, Assert.Single(await NewStore().LoadAsync(Ct)).TotalRunCount);
    }

    [Fact]
    public async Task OnTheBrokersFile_BothWork()
    {
        await using var transport = new SqliteTransport(new TransportOptions { Url = new Uri("sqlite:///" + FilePath) });
        await transport.DeclareQueueAsync(new QueueDeclaration("q", "q", "q"), Ct);
        await transport.PublishAsync("", "q", [new TransportMessage { Body = "[[1], {}, {}]"u8.ToArray() }], Ct);

        IBeatStore store = NewStore();
        await store.SaveAsync(Interval("e"), Ct);
        Assert.True(await store.TryHoldLeaseAsync("beat-1", TimeSpan.FromMinutes(1), Ct));
        Assert.True(await store.TryRecordRunAsync("beat-1", "e", null, Time.GetUtcNow(), Ct));

        Assert.Equal(1, await transport.GetQueueLengthAsync("q", Ct));
        Assert.Equal(1, Assert.Single(await NewStore().LoadAsync(Ct)).TotalRunCount);
    }

    [Fact]
    public async Task Registry_SqliteUrl_CreatesTheStoreOnThatFileWithTheAppsClock()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { TimeProvider = Time });
        IBeatStore? created = app.Providers.CreateExtension<IBeatStore>(new Uri("sqlite:///" + FilePath), app);
        await using var store = Assert.IsType<SqliteBeatStore>(created);
        Assert.Equal(FilePath, store.Path);

        Assert.True(await store.TryHoldLeaseAsync("beat-1", TimeSpan.FromSeconds(10), Ct));
        Assert.False(await NewStore().TryHoldLeaseAsync("beat-2", TimeSpan.FromSeconds(10), Ct));
        Time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(await NewStore().TryHoldLeaseAsync("beat-2", TimeSpan.FromSeconds(10), Ct));
    }

    protected override ValueTask DisposeStoreAsync()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}
