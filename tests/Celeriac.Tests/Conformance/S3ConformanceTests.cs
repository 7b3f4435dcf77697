using System.Text;
using Celeriac.Aws;
using Celeriac.Results;
using Celeriac.Tests.Support;
using Celeriac.TestServers;

namespace Celeriac.Tests.Conformance;

/// <summary>One real s3rver for a test class; each test has a bucket of its own.</summary>
public sealed class S3ServerFixture : IAsyncLifetime
{
    public S3Server Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await S3Server.StartAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    /// <summary>Options of an S3 backend on <paramref name="bucket"/> of this server, with fixed dummy credentials.</summary>
    public ResultBackendOptions Options(string bucket, string basePath = "", TimeProvider? time = null, TimeSpan? expires = null) => new()
    {
        Url = new Uri("s3://celeriac/"),
        Settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["s3_bucket"] = bucket,
            ["s3_base_path"] = basePath,
            ["s3_endpoint_url"] = Server.Endpoint,
            ["s3_region"] = "us-east-1",
            ["s3_access_key_id"] = "S3RVER",
            ["s3_secret_access_key"] = "S3RVER",
        },
        TimeProvider = time ?? TimeProvider.System,
        ResultExpires = expires ?? TimeSpan.FromDays(1),
        PollInterval = TimeSpan.FromMilliseconds(100),
    };
}

public sealed class S3ResultBackendConformanceTests(S3ServerFixture s3) : ResultBackendConformanceTests, IClassFixture<S3ServerFixture>
{
    private const string BasePath = "results/celery/";
    private readonly Lazy<Task<string>> _bucket = new(() => s3.Server.CreateBucketAsync());

    // Polled through a Node.js emulator that competes with the whole suite for two cores.
    protected override TimeSpan WaitPatience => TimeSpan.FromSeconds(20);

    protected override string? NoChordsReason => "S3 has no atomic counter: Celery 5.2 joins a chord on S3 with celery.chord_unlock, not the backend";

    protected override async ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup) =>
        new S3ResultBackend(s3.Options(await _bucket.Value, BasePath, setup.Time, setup.Expires));

    protected override async ValueTask<byte[]?> ReadRawAsync(string key) =>
        await s3.Server.ReadObjectAsync(await _bucket.Value, BasePath + key, Ct);
}

public sealed class S3ResultBackendTests(S3ServerFixture s3) : IClassFixture<S3ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static TaskResultMeta Success(string id) => new()
    {
        TaskId = id,
        Status = TaskStates.Success,
        Result = "42"u8.ToArray(),
        DateDone = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero),
    };

    [Fact]
    public async Task StoreAsync_KeysAreBasePathThenCeleryKey_WithoutSeparator()
    {
        string bucket = await s3.Server.CreateBucketAsync(Ct);
        await using var backend = new S3ResultBackend(s3.Options(bucket, "app1-"));
        string id = Guid.NewGuid().ToString();

        await backend.StoreAsync(Success(id), Ct);
        await backend.SaveGroupAsync("g1", [id], Ct);

        Assert.Equal(["app1-celery-task-meta-" + id, "app1-celery-taskset-meta-g1"], s3.Server.ObjectKeys(bucket));
        Assert.Equal(Success(id).Encode(), await s3.Server.ReadObjectAsync(bucket, "app1-celery-task-meta-" + id, Ct));
    }

    [Fact]
    public async Task GetAsync_WhileAnotherWriterKeepsReplacingTheResult_ReadsAWholeOneEachTime()
    {
        // s3rver writes an object in place: a read that races a write can get bytes that fail the SDK's checksum, or an
        // ETag that is not a hex digest.
        string bucket = await s3.Server.CreateBucketAsync(Ct);
        await using var writer = new S3ResultBackend(s3.Options(bucket));
        await using var reader = new S3ResultBackend(s3.Options(bucket));
        string id = Guid.NewGuid().ToString();
        TaskResultMeta[] versions = [new() { TaskId = id, Status = TaskStates.Started, Result = "{}"u8.ToArray() }, Success(id)];
        await writer.StoreAsync(versions[0], Ct);
        using var done = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        int writes = 0;
        Task writing = Task.Run(
            async () =>
            {
                // Until the reads are done (bounded: 5,000 writes).
                for (; writes < 5000 && !done.IsCancellationRequested; writes++)
                {
                    await writer.StoreAsync(versions[writes % 2], done.Token);
                    await Task.Delay(10, done.Token);
                }
            },
            Ct);

        // At least 5 reads, and on until 20 writes have raced them (bounded: 2,000 reads).
        for (int reads = 0; (reads < 5 || Volatile.Read(ref writes) < 20) && reads < 2000; reads++)
        {
            TaskResultMeta? read = await reader.GetAsync(id, Ct);
            Assert.Contains(read?.Status, (string[])[TaskStates.Started, TaskStates.Success]);
        }

        int racing = writes;
        await done.CancelAsync();
        await writing.ContinueWith(_ => { }, TaskScheduler.Default);
        Assert.InRange(racing, 20, 4999);
    }

    [Fact]
    public async Task GetAsync_AResponseThatEndsBeforeItsContentLength_IsReadAgainAtOnce()
    {
        // s3rver, rewriting an object in place, can end a read before its Content-Length. No emulator does that on
        // demand, so a loopback server plays S3 here: the first three GETs (the SDK's try and its two retries) stop
        // halfway through the body and close the connection; the fourth is whole.
        byte[] body = Success("truncated").Encode();
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int gets = 0;
        Task serving = Task.Run(
            async () =>
            {
                for (int connection = 0; connection < 10; connection++)
                {
                    using System.Net.Sockets.TcpClient client = await listener.AcceptTcpClientAsync(Ct);
                    using System.Net.Sockets.NetworkStream stream = client.GetStream();
                    while (await ReadRequestHeadAsync(stream) is { } head)
                    {
                        bool cut = Interlocked.Increment(ref gets) <= 3;
                        Assert.StartsWith("GET /bucket/celery-task-meta-truncated", head, StringComparison.Ordinal);
                        string response = $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nLast-Modified: {TimeProvider.System.GetUtcNow():R}\r\n\r\n";
                        await stream.WriteAsync(Encoding.ASCII.GetBytes(response), Ct);
                        await stream.WriteAsync(cut ? body.AsMemory(0, body.Length / 2) : body, Ct);
                        await stream.FlushAsync(Ct);
                        if (cut)
                        {
                            break; // The connection closes with the body half sent.
                        }
                    }
                }
            },
            Ct);
        using var log = new CollectingLoggerFactory();
        var options = new ResultBackendOptions
        {
            Url = new Uri("s3://celeriac/"),
            Settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
            {
                ["s3_bucket"] = "bucket",
                ["s3_endpoint_url"] = $"http://127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}",
                ["s3_region"] = "us-east-1",
                ["s3_access_key_id"] = "FAKE",
                ["s3_secret_access_key"] = "FAKE",
            },
            ConnectTimeout = TimeSpan.FromSeconds(30),
            LoggerFactory = log,
        };
        await using var backend = new S3ResultBackend(options);

        TaskResultMeta? read = await backend.GetAsync("truncated", Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(20), Ct);

        // Read again as a garbled read, not taken for an outage: nothing says S3 is unreachable (taken for one, a cut
        // read kept up, as a racing writer can, failed the read after the connect timeout as an S3 never reached).
        Assert.Equal(TaskStates.Success, read?.Status);
        Assert.Equal(4, Volatile.Read(ref gets));
        Assert.DoesNotContain(log.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning);
        Assert.False(serving.IsFaulted, serving.Exception?.ToString());
    }

    /// <summary>One HTTP request's head (its first line and headers), or null when the client closed the connection.</summary>
    private static async Task<string?> ReadRequestHeadAsync(System.Net.Sockets.NetworkStream stream)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one, Ct) == 0 || head.Length > 16_384)
            {
                return null;
            }

            head.Append((char)one[0]);
        }

        return head.ToString();
    }

    [Fact]
    public void NoBucket_IsAConfigurationErrorNamingTheSetting()
    {
        var options = new ResultBackendOptions { Url = new Uri("s3://celeriac/") };

        var error = Assert.Throws<CeleriacConfigurationException>(() => new S3ResultBackend(options));

        Assert.Contains("s3_bucket", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingBucket_IsAClearErrorAtOnce()
    {
        await using var backend = new S3ResultBackend(s3.Options("no-such-bucket-" + Guid.NewGuid().ToString("N")[..8]));
        var started = System.Diagnostics.Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<CeleriacConfigurationException>(() => backend.StoreAsync(Success("x"), Ct).AsTask());

        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
        Assert.InRange(started.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task App_S3Url_SettingsFromTheUrlQueryAndConfiguration_StoresInTheBucket()
    {
        string bucket = await s3.Server.CreateBucketAsync(Ct);
        var options = new CeleriacOptions
        {
            BrokerUrl = "memory://" + Guid.NewGuid().ToString("N"),
            ResultBackend = "s3://?s3_bucket=" + bucket + "&s3_base_path=q/",
        };
        options.ResultBackendSettings["s3_bucket"] = "overridden-by-the-url";
        options.ResultBackendSettings["s3_endpoint_url"] = s3.Server.Endpoint;
        options.ResultBackendSettings["s3_access_key_id"] = "S3RVER";
        options.ResultBackendSettings["s3_secret_access_key"] = "S3RVER";
        await using var app = new CeleriacApp(options);
        string id = Guid.NewGuid().ToString();

        var backend = Assert.IsType<S3ResultBackend>(app.ResultBackend);
        await backend.StoreAsync(Success(id), Ct);

        Assert.Equal(["q/celery-task-meta-" + id], s3.Server.ObjectKeys(bucket));
        Assert.Equal(42, await app.AsyncResult(id).GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
    }

    [Fact]
    public async Task Chords_NotJoinedHere_AMemberOfACelerysChordReportsNothing()
    {
        string bucket = await s3.Server.CreateBucketAsync(Ct);
        await using var backend = new S3ResultBackend(s3.Options(bucket));

        Assert.False(backend.SupportsChords);
        Assert.Null(await backend.AddChordPartAsync(new ChordPartReturn("g", 0, "a", TaskStates.Success, "1"u8.ToArray(), null), Ct));
        await Assert.ThrowsAsync<NotSupportedException>(() => backend.IncrementChordCounterAsync("g", Ct).AsTask());
    }

    [Fact]
    public async Task Chord_SentByACeleriacClient_JoinedByChordUnlockAsCeleryJoinsIt()
    {
        string bucket = await s3.Server.CreateBucketAsync(Ct);
        await using CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.ResultBackend = "s3://?s3_bucket=" + bucket + "&s3_endpoint_url=" + Uri.EscapeDataString(s3.Server.Endpoint);
            o.ResultBackendSettings["s3_access_key_id"] = "S3RVER";
            o.ResultBackendSettings["s3_secret_access_key"] = "S3RVER";
        });
        CeleriacTask add = app.Task("s3.add", (long x, long y) => x + y);
        CeleriacTask sum = app.Task("s3.xsum", (long[] values) => values.Sum());
        var sent = new List<string>();
        app.Signals.AfterTaskPublish += (_, e) =>
        {
            lock (sent)
            {
                sent.Add(e.TaskName);
            }
        };
        await using RunningWorker w = await RunningWorker.StartAsync(app);

        AsyncResult result = await global::Celeriac.Canvas.Chord([add.S(1, 1), add.S(2, 2), add.S(3, 3)], sum.S()).ApplyAsync(ct: Ct);

        Assert.Equal(12, await result.GetAsync<long>(TimeSpan.FromSeconds(30), Ct));
        lock (sent)
        {
            Assert.Contains("celery.chord_unlock", sent);
        }

        Assert.Contains(KeyValueResultBackend.TaskKeyPrefix + result.Id, s3.Server.ObjectKeys(bucket));
    }
}

/// <summary>An S3 that never answered: the caller hears so after the connect timeout, not the outage patience.</summary>
public sealed class S3NeverReachedTests
{
    private const string Secret = "never-shown-s3-secret";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GetAsync_NothingListens_BrokerUnreachableAfterTheConnectTimeout_WithoutTheSecret()
    {
        int port = FreePort.Next();
        await using var backend = new S3ResultBackend(new ResultBackendOptions
        {
            Url = new Uri("s3://celeriac/"),
            Settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
            {
                ["s3_bucket"] = "results",
                ["s3_endpoint_url"] = $"http://127.0.0.1:{port}",
                ["s3_access_key_id"] = "key",
                ["s3_secret_access_key"] = Secret,
            },
            ConnectTimeout = TimeSpan.FromSeconds(1),
        });
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<BrokerUnreachableException>(() => backend.GetAsync(Guid.NewGuid().ToString(), Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        Assert.Contains($"S3 at http://127.0.0.1:{port}/ bucket results", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, error.ToString(), StringComparison.Ordinal);
    }
}

/// <summary>An S3 that goes away and comes back: a test class of its own, since it stops its server.</summary>
public sealed class S3OutageTests : IAsyncLifetime
{
    private S3Server _server = null!;
    private readonly S3ServerFixture _fixture = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _fixture.InitializeAsync();
        _server = _fixture.Server;
    }

    public async ValueTask DisposeAsync() => await _fixture.DisposeAsync();

    [Fact]
    public async Task ServerGone_ReadFailsClearlyAfterItsPatience_WriteWaitsUntilItIsBack()
    {
        string bucket = await _server.CreateBucketAsync(Ct);
        await using var backend = new S3ResultBackend(_fixture.Options(bucket)) { ReadPatience = TimeSpan.FromSeconds(1.5), WritePatience = TimeSpan.FromSeconds(30) };
        string id = Guid.NewGuid().ToString();

        // Gone after it answered: a server never reached would fail the write after the connect timeout instead.
        Assert.Null(await backend.GetAsync(id, Ct));
        await _server.Emulator.StopAsync();

        var started = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<TimeoutException>(() => backend.GetAsync(id, Ct).AsTask());
        Assert.Contains("S3 at " + _server.Endpoint, error.Message, StringComparison.Ordinal);
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(20));

        Task store = backend.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Success, Result = "7"u8.ToArray() }, Ct).AsTask();
        await Task.Delay(500, Ct);
        Assert.False(store.IsCompleted);
        await _server.Emulator.StartAgainAsync(Ct);
        await store.WaitAsync(TimeSpan.FromSeconds(20), Ct);

        Assert.Equal(TaskStates.Success, (await backend.GetAsync(id, Ct))?.Status);
    }

    [Fact]
    public async Task ServerGoneAfterItAnswered_ReadWaitsItsPatience_NotTheConnectTimeout()
    {
        string bucket = await _server.CreateBucketAsync(Ct);
        ResultBackendOptions options = _fixture.Options(bucket);
        await using var backend = new S3ResultBackend(new ResultBackendOptions { Url = options.Url, Settings = options.Settings, ConnectTimeout = TimeSpan.FromSeconds(0.5) })
        {
            ReadPatience = TimeSpan.FromSeconds(3),
        };
        Assert.Null(await backend.GetAsync(Guid.NewGuid().ToString(), Ct));
        await _server.Emulator.StopAsync();

        var started = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<TimeoutException>(() => backend.GetAsync(Guid.NewGuid().ToString(), Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct));

        Assert.Contains("S3 at " + _server.Endpoint, error.Message, StringComparison.Ordinal);
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(20));
    }
}
