using System.Text;
using Celeriac.Results;
using Celeriac.Sqlite;
using Celeriac.Transport;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Tests.Sqlite;

public sealed class SqliteTransportTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-sqlite-").FullName;

    private string FilePath => Path.Join(_directory, "celeriac.db");

    private Uri Url => new("sqlite:///" + FilePath);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ConsumeAsync_UndecodableRow_DeliveredWithDecodeErrorAndAckable()
    {
        await using var t = new SqliteTransport(new TransportOptions { Url = Url });
        using (var connection = new SqliteConnection("Data Source=" + FilePath))
        {
            connection.Open();
            using SqliteCommand insert = connection.CreateCommand();
            insert.CommandText = "INSERT INTO messages (queue, payload) VALUES ('bad', $p)";
            insert.Parameters.AddWithValue("$p", Encoding.UTF8.GetBytes("{not json"));
            insert.ExecuteNonQuery();
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(10));
        Delivery? got = null;
        await foreach (Delivery d in t.ConsumeAsync(new ConsumeOptions { Queues = ["bad"] }, cts.Token))
        {
            got = d;
            break;
        }

        Assert.NotNull(got);
        Assert.Null(got.Message);
        Assert.Contains("JSON", got.DecodeError, StringComparison.Ordinal);
        await got.AckAsync(Ct);
        await t.DisposeAsync();
        await using var again = new SqliteTransport(new TransportOptions { Url = Url });
        Assert.Equal(0, await again.GetQueueLengthAsync("bad", Ct));
    }

    [Fact]
    public async Task SubscribeAsync_IdleSubscriber_GetsAnotherProcesssBroadcastAsSoonAsItIsCommitted()
    {
        await using var listener = new SqliteTransport(new TransportOptions { Url = Url });
        await using var other = new SqliteTransport(new TransportOptions { Url = Url }, SqliteStore.OpenPrivate(FilePath, NullLoggerFactory.Instance));
        var got = System.Threading.Channels.Channel.CreateUnbounded<(string Id, long At)>();
        await using IAsyncDisposable subscription = await listener.SubscribeAsync(
            "fan", m => got.Writer.WriteAsync(((string)m.Headers["id"]!, System.Diagnostics.Stopwatch.GetTimestamp())), ct: Ct);

        List<TimeSpan> delays = [];
        for (int i = 0; i < 5; i++)
        {
            // Idle for over a second each time (every back-off at its longest), ending at a different moment of the
            // subscriber's 0.9 s fallback each time.
            await Task.Delay(TimeSpan.FromMilliseconds(1100 + 170 * i), Ct);
            long sent = System.Diagnostics.Stopwatch.GetTimestamp();
            await other.PublishAsync("fan", "", [new TransportMessage { Body = Encoding.UTF8.GetBytes("[[], {}, {}]"), Headers = new Dictionary<string, object?>(StringComparer.Ordinal) { ["id"] = "m" + i } }], Ct);
            (string id, long at) = await got.Reader.ReadAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), Ct);
            Assert.Equal("m" + i, id);
            delays.Add(System.Diagnostics.Stopwatch.GetElapsedTime(sent, at));
        }

        // The store checks other processes' commits at least every 100 ms while someone watches, and pulses the
        // subscriber; without that pulse it would wait for its 0.9 s fallback.
        Assert.True(delays.Count(d => d < TimeSpan.FromMilliseconds(400)) >= 4, string.Join(", ", delays.Select(d => $"{d.TotalMilliseconds:0} ms")));
    }

    [Fact]
    public async Task ProviderRegistry_SqliteUrl_CreatesTransportAndBackendOnTheFile()
    {
        var registry = new ProviderRegistry();

        await using ITransport transport = registry.CreateTransport(new TransportOptions { Url = Url });
        await using IResultBackend backend = registry.CreateResultBackend(new ResultBackendOptions { Url = Url });

        Assert.Equal(FilePath, Assert.IsType<SqliteTransport>(transport).Path);
        Assert.IsType<SqliteResultBackend>(backend);
        Assert.True(File.Exists(FilePath));
    }

    [Fact]
    public async Task PublishAsync_ManyConcurrentCalls_ShareCommits()
    {
        await using var t = new SqliteTransport(new TransportOptions { Url = Url });
        long before = t.Store.Commits;

        await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => Task.Run(() => t.PublishAsync("", "many", [new TransportMessage { Body = Encoding.UTF8.GetBytes("[[], {}, {}]") }], Ct).AsTask(), Ct)));

        Assert.Equal(1000, await t.GetQueueLengthAsync("many", Ct));
        long commits = t.Store.Commits - before;
        Assert.InRange(commits, 1, 500);
    }

    [Fact]
    public async Task DisposeAsync_AfterAcks_HasDeletedEveryAckedRow()
    {
        var t = new SqliteTransport(new TransportOptions { Url = Url });
        await t.PublishAsync("", "q", [.. Enumerable.Range(0, 50).Select(_ => new TransportMessage { Body = Encoding.UTF8.GetBytes("[[], {}, {}]") })], Ct);
        int acked = 0;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(10));
        await foreach (Delivery d in t.ConsumeAsync(new ConsumeOptions { Queues = ["q"], Prefetch = 50 }, cts.Token))
        {
            await d.AckAsync(Ct);
            if (++acked == 50)
            {
                break;
            }
        }

        await t.DisposeAsync();

        using var connection = new SqliteConnection("Data Source=" + FilePath);
        connection.Open();
        using SqliteCommand count = connection.CreateCommand();
        count.CommandText = "SELECT count(*) FROM messages";
        Assert.Equal(0L, count.ExecuteScalar());
    }

    [Fact]
    public void FilePath_RelativeAndAbsoluteUrls_AsSqlAlchemyReadsThem()
    {
        Assert.Equal(Path.GetFullPath("celeriac.db"), UrlText.FilePath(new Uri("sqlite:///celeriac.db")));
        Assert.Equal("/tmp/x/celeriac.db", UrlText.FilePath(new Uri("sqlite:////tmp/x/celeriac.db")));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
