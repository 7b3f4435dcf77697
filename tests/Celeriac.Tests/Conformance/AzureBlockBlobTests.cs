using System.Diagnostics;
using System.Text;
using Azure.Storage.Blobs;
using Celeriac.Azure;
using Celeriac.Results;
using Celeriac.Tests.Support;
using Celeriac.TestServers;

namespace Celeriac.Tests.Conformance;

/// <summary>What is particular to Celery's Azure Block Blob backend: names, settings, configuration errors, chords.</summary>
public sealed class AzureBlockBlobTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static TaskResultMeta Success(string id) => new()
    {
        TaskId = id,
        Status = TaskStates.Success,
        Result = "[1, 2.5, \"\\u00e9\"]"u8.ToArray(),
        DateDone = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero),
    };

    [Fact]
    public async Task StoreAsync_ContainerAndBasePathInUrl_WritesCeleryBlobNameInThatContainer()
    {
        string container = AzuriteFixture.NewContainer();
        string id = Guid.NewGuid().ToString();
        // The URL's query wins over the configured container (the fixture configures another one).
        await using AzureBlockBlobResultBackend b = azurite.Backend(AzuriteFixture.NewContainer(), $"?azureblockblob_container_name={container}&azureblockblob_base_path=celery/results/");

        await b.StoreAsync(Success(id), Ct);

        Assert.Equal(container, b.ContainerName);
        BlobContainerClient client = azurite.Container(container);
        List<string> names = [];
        await foreach (global::Azure.Storage.Blobs.Models.BlobItem item in client.GetBlobsAsync(cancellationToken: Ct))
        {
            names.Add(item.Name);
        }

        Assert.Equal(["celery/results/celery-task-meta-" + id], names);
        byte[] content = (await client.GetBlobClient(names[0]).DownloadContentAsync(Ct)).Value.Content.ToArray();
        Assert.Equal(Success(id).Encode(), content);
        Assert.Equal(TaskStates.Success, (await b.GetAsync(id, Ct))?.Status);
    }

    [Fact]
    public async Task GetAsync_ContainerNotCreatedYet_ReadsAsPending()
    {
        await using AzureBlockBlobResultBackend b = azurite.Backend(AzuriteFixture.NewContainer());

        Assert.Null(await b.GetAsync(Guid.NewGuid().ToString(), Ct));
        Assert.Null(await b.RestoreGroupAsync(Guid.NewGuid().ToString(), Ct));
    }

    [Fact]
    public async Task StoreAsync_ContainerDeletedMeanwhile_CreatesItAgain()
    {
        string container = AzuriteFixture.NewContainer();
        await using AzureBlockBlobResultBackend b = azurite.Backend(container);
        await b.StoreAsync(Success("first"), Ct);
        await azurite.Container(container).DeleteAsync(cancellationToken: Ct);

        // Azurite deletes a container at once; Azure itself may refuse to re-create it for a while (then the write is an error).
        await b.StoreAsync(Success("second"), Ct);

        Assert.Equal(TaskStates.Success, (await b.GetAsync("second", Ct))?.Status);
    }

    [Theory]
    [InlineData("Celery")]
    [InlineData("ab")]
    [InlineData("bad--name")]
    [InlineData("bad_name")]
    public void Constructor_InvalidContainerName_ConfigurationErrorNamesTheSetting(string container)
    {
        var error = Assert.Throws<CeleriacConfigurationException>(() => azurite.Backend(container));

        Assert.Contains("azureblockblob_container_name", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("azureblockblob://NotAConnectionString")]
    [InlineData("azureblockblob://Foo=bar;AccountKey=s3cretkey")]
    public void Constructor_InvalidConnectionString_ConfigurationErrorWithoutTheKey(string url)
    {
        var error = Assert.Throws<CeleriacConfigurationException>(() => new AzureBlockBlobResultBackend(new ResultBackendOptions { Url = UrlText.Parse(url, "result backend") }));

        Assert.Contains("connection string", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cretkey", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_BadTimeoutSetting_ConfigurationErrorNamesIt()
    {
        var error = Assert.Throws<CeleriacConfigurationException>(() => azurite.Backend(AzuriteFixture.NewContainer(), "?azureblockblob_read_timeout=soon"));

        Assert.Contains("azureblockblob_read_timeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_AzureBackend_ClientReadsSuccessAndFailure()
    {
        string container = AzuriteFixture.NewContainer();
        await using CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.ResultBackend = azurite.Server.Url();
            o.ResultBackendSettings["azureblockblob_container_name"] = container;
        });
        app.Task("az.add", (long x, long y) => x + y);
        app.Task("az.fail", new Func<int>(() => throw new ArgumentException("bad value")));
        await using RunningWorker w = await RunningWorker.StartAsync(app);

        AsyncResult sum = await app.SendTaskAsync("az.add", [2, 3], ct: Ct);
        AsyncResult failed = await app.SendTaskAsync("az.fail", ct: Ct);

        Assert.Equal(5, await sum.GetAsync<long>(s_wait, Ct));
        await Assert.ThrowsAsync<TaskFailedException>(() => failed.GetAsync<int>(s_wait, Ct));
        Assert.True(await azurite.Container(container).GetBlobClient(KeyValueResultBackend.TaskKeyPrefix + sum.Id).ExistsAsync(Ct));
    }

    [Fact]
    public async Task Chord_AzureBackend_JoinedByChordUnlockAsCeleryJoinsIt()
    {
        string container = AzuriteFixture.NewContainer();
        await using CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.ResultBackend = azurite.Server.Url();
            o.ResultBackendSettings["azureblockblob_container_name"] = container;
        });
        CeleriacTask add = app.Task("az.add", (long x, long y) => x + y);
        CeleriacTask sum = app.Task("az.xsum", (long[] values) => values.Sum());
        var unlocks = new List<string>();
        app.Signals.AfterTaskPublish += (_, e) =>
        {
            lock (unlocks)
            {
                unlocks.Add(e.TaskName);
            }
        };
        await using RunningWorker w = await RunningWorker.StartAsync(app);

        AsyncResult result = await global::Celeriac.Canvas.Chord([add.S(1, 1), add.S(2, 2), add.S(3, 3)], sum.S()).ApplyAsync(ct: Ct);

        Assert.False(app.ResultBackend.SupportsChords);
        Assert.Equal(12, await result.GetAsync<long>(s_wait, Ct));
        lock (unlocks)
        {
            Assert.Contains("celery.chord_unlock", unlocks);
        }
    }

    [Fact]
    public async Task Chord_HeaderOfLongChains_UnlockCarriesTheirDeepResultTuples()
    {
        // Each step's tuple nests its parent's ([[id, [[parent, ...], null]], null]): 40 steps nest beyond 64 levels.
        await using CeleriacApp app = RunningWorker.NewApp(o => o.ResultBackend = azurite.Server.Url());
        CeleriacTask add = app.Task("az.add", (long x, long y) => x + y);
        CeleriacTask sum = app.Task("az.xsum", (long[] values) => values.Sum());
        await using RunningWorker w = await RunningWorker.StartAsync(app);
        Signature chain = add.S(0, 1);
        for (int i = 0; i < 39; i++)
        {
            chain |= add.S(1);
        }

        AsyncResult result = await global::Celeriac.Canvas.Chord([chain, add.S(1, 1)], sum.S()).ApplyAsync(ct: Ct);

        Assert.Equal(42, await result.GetAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task StoreThenGet_SequentialRoundTrips_EachReadsItsOwnDocument()
    {
        // Also the figure in the README: the median of a store + get on azurite (an emulator, on loopback).
        await using AzureBlockBlobResultBackend b = azurite.Backend(AzuriteFixture.NewContainer());
        await b.StoreAsync(Success("warm-up"), Ct);
        var times = new List<double>();
        for (int i = 0; i < 200; i++)
        {
            string id = Guid.NewGuid().ToString();
            long start = Stopwatch.GetTimestamp();
            await b.StoreAsync(Success(id), Ct);
            TaskResultMeta? got = await b.GetAsync(id, Ct);
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            Assert.Equal(id, got?.TaskId);
        }

        times.Sort();
        TestContext.Current.TestOutputHelper?.WriteLine($"azurite store + get: median {times[100]:F2} ms, p90 {times[180]:F2} ms, min {times[0]:F2} ms (200 sequential)");
    }

    [Fact]
    public async Task AddChordPartAsync_AsCeleryWithoutIncr_DoesNothing()
    {
        await using AzureBlockBlobResultBackend b = azurite.Backend(AzuriteFixture.NewContainer());
        string group = Guid.NewGuid().ToString();

        // A Celery client sends celery.chord_unlock with the chord and saves nothing: a member's end must not fail the body.
        ChordJoin? join = await b.AddChordPartAsync(new ChordPartReturn(group, 0, "m", TaskStates.Success, "1"u8.ToArray(), 1), Ct);

        Assert.Null(join);
        Assert.Null(await b.RestoreGroupAsync(group, Ct));
    }
}

/// <summary>The backend while azurite is away: it waits for it, within bounds, and then says so.</summary>
public sealed class AzureBlockBlobOutageTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task StoreAsync_ServerStoppedAndStartedAgain_ResultIsStored()
    {
        await using AzureBlockBlobResultBackend b = azurite.Backend(AzuriteFixture.NewContainer());
        await b.StoreAsync(new TaskResultMeta { TaskId = "before", Status = TaskStates.Success, Result = "1"u8.ToArray() }, Ct);
        await azurite.Server.StopAsync();
        try
        {
            Task store = b.StoreAsync(new TaskResultMeta { TaskId = "during", Status = TaskStates.Success, Result = "2"u8.ToArray() }, Ct).AsTask();
            await Task.Delay(300, Ct);
            Assert.False(store.IsCompleted, store.Exception?.ToString());

            await azurite.Server.StartAgainAsync(Ct);
            await store.WaitAsync(TimeSpan.FromSeconds(20), Ct);
        }
        finally
        {
            await azurite.Server.StartAgainAsync(Ct);
        }

        Assert.Equal("2", Encoding.UTF8.GetString((await b.GetAsync("during", Ct))!.Result.Span));
        Assert.Equal("1", Encoding.UTF8.GetString((await b.GetAsync("before", Ct))!.Result.Span));
    }

    [Fact]
    public async Task GetAsync_ServerGone_TimeoutNamingTheEndpointAfterItsPatience()
    {
        await using AzureBlockBlobResultBackend b = azurite.Backend(AzuriteFixture.NewContainer());
        b.ReadPatience = TimeSpan.FromSeconds(1);
        await azurite.Server.StopAsync();
        try
        {
            var clock = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<TimeoutException>(() => b.GetAsync("x", Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct));

            Assert.Contains($"127.0.0.1:{azurite.Server.Port}", error.Message, StringComparison.Ordinal);
            Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(10));
        }
        finally
        {
            await azurite.Server.StartAgainAsync(Ct);
        }

        Assert.Null(await b.GetAsync("x", Ct));
    }
}

/// <summary>An Azure Blob service that never answered: the caller hears so after the connect timeout, not the outage patience.</summary>
public sealed class AzureBlockBlobNeverReachedTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GetAsync_NothingListens_BrokerUnreachableAfterTheConnectTimeout_WithoutTheKey()
    {
        int port = FreePort.Next();
        string key = Convert.ToBase64String("never-shown-account-key"u8);
        await using var backend = new AzureBlockBlobResultBackend(new ResultBackendOptions
        {
            Url = UrlText.Parse($"azureblockblob://DefaultEndpointsProtocol=http;AccountName=acc;AccountKey={key};BlobEndpoint=http://127.0.0.1:{port}/acc;", "result backend"),
            ConnectTimeout = TimeSpan.FromSeconds(1),
        });
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<BrokerUnreachableException>(() => backend.GetAsync(Guid.NewGuid().ToString(), Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        Assert.Contains($"Azure Blob storage at http://127.0.0.1:{port}/acc", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(key, error.ToString(), StringComparison.Ordinal);
    }
}
