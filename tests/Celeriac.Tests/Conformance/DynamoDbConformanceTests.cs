using Amazon.DynamoDBv2;
using Amazon.DynamoDBv2.Model;
using Amazon.Runtime;
using Celeriac.Aws;
using Celeriac.Results;
using Celeriac.TestServers;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Conformance;

/// <summary>One real dynalite for a test class; each test has a table of its own.</summary>
public sealed class DynamoDbServerFixture : IAsyncLifetime
{
    public DynamoDbServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await DynamoDbServer.StartAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    /// <summary>Options of a DynamoDB backend on <paramref name="table"/> of this server (Celery's URL, fixed dummy credentials).</summary>
    public ResultBackendOptions Options(string table, string query = "", TimeProvider? time = null, TimeSpan? expires = null) => new()
    {
        Url = new Uri(Server.Url(table, query)),
        TimeProvider = time ?? TimeProvider.System,
        ResultExpires = expires ?? TimeSpan.FromDays(1),
        PollInterval = TimeSpan.FromMilliseconds(100),
    };

    /// <summary>A plain SDK client on the emulator, to look at what the backend wrote.</summary>
    public AmazonDynamoDBClient Client() =>
        new(new BasicAWSCredentials("celeriac", "celeriac"), new AmazonDynamoDBConfig { ServiceURL = Server.Endpoint, AuthenticationRegion = "us-east-1" });
}

public sealed class DynamoDbResultBackendConformanceTests(DynamoDbServerFixture dynamo) : ResultBackendConformanceTests, IClassFixture<DynamoDbServerFixture>
{
    private readonly string _table = DynamoDbServer.NewTable();

    // Polled through a Node.js emulator that competes with the whole suite for two cores.
    protected override TimeSpan WaitPatience => TimeSpan.FromSeconds(20);

    protected override ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup) =>
        ValueTask.FromResult<IResultBackend>(new DynamoDbResultBackend(dynamo.Options(_table, "", setup.Time, setup.Expires)));

    protected override async ValueTask<byte[]?> ReadRawAsync(string key)
    {
        using AmazonDynamoDBClient client = dynamo.Client();
        GetItemResponse got = await client.GetItemAsync(new GetItemRequest { TableName = _table, Key = new() { ["id"] = new AttributeValue { S = DynamoDbResultBackend.ItemId(key) } }, ConsistentRead = true }, Ct);
        return got.Item is { Count: > 0 } item ? item["result"].B.ToArray() : null;
    }
}

public sealed class DynamoDbResultBackendTests(DynamoDbServerFixture dynamo) : IClassFixture<DynamoDbServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static TaskResultMeta Success(string id) => new()
    {
        TaskId = id,
        Status = TaskStates.Success,
        Result = "42"u8.ToArray(),
        DateDone = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero),
    };

    private static ResultBackendOptions Url(string url) => new() { Url = new Uri(url) };

    [Fact]
    public void Url_AwsRegionTableCapacitiesAndTtl_ReadAsCeleryReadsThem()
    {
        DynamoDbSettings s = DynamoDbSettings.Parse(Url("dynamodb://AKID:se%2Fcret@eu-west-3/results?read=5&write=7&ttl_seconds=600"));

        Assert.Equal(("results", "eu-west-3", (Uri?)null, "AKID", "se/cret", 5, 7, (int?)600), (s.Table, s.Region, s.Endpoint, s.AccessKey, s.SecretKey, s.ReadCapacity, s.WriteCapacity, s.TtlSeconds));
    }

    [Fact]
    public void Url_LocalhostAndPort_IsALocalEndpointInUsEast1_OnCelerysDefaultTable()
    {
        DynamoDbSettings s = DynamoDbSettings.Parse(Url("dynamodb://@localhost:8000"));

        Assert.Equal(("celery", "us-east-1", "http://localhost:8000/", (string?)null, 1, 1, (int?)null), (s.Table, s.Region, s.Endpoint?.ToString(), s.AccessKey, s.ReadCapacity, s.WriteCapacity, s.TtlSeconds));
    }

    [Fact]
    public void Url_EndpointSetting_WinsOverTheHost()
    {
        var options = new ResultBackendOptions
        {
            Url = new Uri("dynamodb://k:s@us-east-2/t"),
            Settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["dynamodb_endpoint_url"] = "http://127.0.0.1:9" },
        };

        DynamoDbSettings s = DynamoDbSettings.Parse(options);

        Assert.Equal(("us-east-2", "http://127.0.0.1:9/"), (s.Region, s.Endpoint?.ToString()));
    }

    [Theory]
    [InlineData("celery-task-meta-abc", "b'celery-task-meta-abc'")]
    [InlineData("it's", "b\"it's\"")]
    [InlineData("ü\\", "b'\\xc3\\xbc\\\\'")]
    [InlineData("a'\"", "b'a\\'\"'")]
    [InlineData("t\tn\n", "b't\\tn\\n'")]
    public void ItemId_IsCelery52sStrOfTheKeysBytes(string key, string expected) => Assert.Equal(expected, DynamoDbResultBackend.ItemId(key));

    [Theory]
    [InlineData("dynamodb://keyonly@localhost:8000/t", "both")]
    [InlineData("dynamodb://k:s@localhost:8000/t?ttl_seconds=soon", "ttl_seconds")]
    [InlineData("dynamodb://k:s@localhost:8000/t?read=x", "read")]
    public void Url_Bad_IsAClearConfigurationError(string url, string named)
    {
        var error = Assert.Throws<CeleriacConfigurationException>(() => new DynamoDbResultBackend(Url(url)));

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FirstUse_CreatesCelerysTable_WithTheUrlsCapacities_EvenWhereTheStoreHasNoTtlApi()
    {
        string table = DynamoDbServer.NewTable();
        await using var backend = new DynamoDbResultBackend(dynamo.Options(table, "?read=3&write=4&ttl_seconds=3600"));

        await backend.StoreAsync(Success("a"), Ct);

        using AmazonDynamoDBClient client = dynamo.Client();
        TableDescription t = (await client.DescribeTableAsync(table, Ct)).Table;
        Assert.Equal([("id", "HASH")], t.KeySchema.Select(k => (k.AttributeName, k.KeyType.Value)));
        Assert.Equal([("id", "S")], t.AttributeDefinitions.Select(a => (a.AttributeName, a.AttributeType.Value)));
        Assert.Equal((3L, 4L), (t.ProvisionedThroughput.ReadCapacityUnits, t.ProvisionedThroughput.WriteCapacityUnits));

        // dynalite has no UpdateTimeToLive (Celery's ttl_seconds fails on it): the backend goes on without.
        var noTtlApi = await Assert.ThrowsAsync<AmazonDynamoDBException>(() => client.UpdateTimeToLiveAsync(
            new UpdateTimeToLiveRequest { TableName = table, TimeToLiveSpecification = new TimeToLiveSpecification { Enabled = true, AttributeName = "ttl" } }, Ct));
        Assert.Equal("UnknownOperationException", noTtlApi.ErrorCode);
        Assert.Equal(TaskStates.Success, (await backend.GetAsync("a", Ct))?.Status);
    }

    [Fact]
    public async Task StoreAsync_WritesCelerysItem_IdResultTimestampAndTtl()
    {
        string table = DynamoDbServer.NewTable();
        var time = new FakeTimeProvider(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));
        await using var backend = new DynamoDbResultBackend(dynamo.Options(table, "?ttl_seconds=120", time));
        string id = Guid.NewGuid().ToString();

        await backend.StoreAsync(Success(id), Ct);

        using AmazonDynamoDBClient client = dynamo.Client();
        Dictionary<string, AttributeValue> item = (await client.GetItemAsync(new GetItemRequest { TableName = table, Key = new() { ["id"] = new AttributeValue { S = "b'celery-task-meta-" + id + "'" } }, ConsistentRead = true }, Ct)).Item;
        Assert.Equal(["id", "result", "timestamp", "ttl"], item.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(Success(id).Encode(), item["result"].B.ToArray());
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        Assert.Equal(now, (long)double.Parse(item["timestamp"].N, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal((now + 120).ToString(System.Globalization.CultureInfo.InvariantCulture), item["ttl"].N);
    }

    [Fact]
    public async Task NegativeTtlSeconds_NoTtlAttribute_AndTheResultStays()
    {
        string table = DynamoDbServer.NewTable();
        var time = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        await using var backend = new DynamoDbResultBackend(dynamo.Options(table, "?ttl_seconds=-1", time, expires: TimeSpan.FromSeconds(1)));
        string id = Guid.NewGuid().ToString();

        await backend.StoreAsync(Success(id), Ct);
        time.Advance(TimeSpan.FromDays(30));

        Assert.NotNull(await backend.GetAsync(id, Ct));
        using AmazonDynamoDBClient client = dynamo.Client();
        Dictionary<string, AttributeValue> item = (await client.GetItemAsync(new GetItemRequest { TableName = table, Key = new() { ["id"] = new AttributeValue { S = "b'celery-task-meta-" + id + "'" } }, ConsistentRead = true }, Ct)).Item;
        Assert.DoesNotContain("ttl", item.Keys);
    }

    [Fact]
    public async Task Chord_CounterItemIsCelery53s_ChordCountFromZero()
    {
        string table = DynamoDbServer.NewTable();
        await using var backend = new DynamoDbResultBackend(dynamo.Options(table));
        string group = Guid.NewGuid().ToString();

        await backend.BeginChordAsync(group, ["a", "b"], 2, ct: Ct);
        using AmazonDynamoDBClient client = dynamo.Client();
        Dictionary<string, AttributeValue> counter = (await client.GetItemAsync(new GetItemRequest { TableName = table, Key = new() { ["id"] = new AttributeValue { S = "b'chord-unlock-" + group + "'" } }, ConsistentRead = true }, Ct)).Item;
        Assert.Equal("0", counter["chord_count"].N);

        Assert.Equal(1, await backend.IncrementChordCounterAsync(group, Ct));
        Assert.Equal(2, await backend.IncrementChordCounterAsync(group, Ct));
    }

    [Fact]
    public async Task ChordPart_OfACelery52Chord_NoCounterNoGroup_ReportsNothing()
    {
        // Celery 5.2 joins a chord on DynamoDB with celery.chord_unlock: it saves no group and starts no counter.
        await using var backend = new DynamoDbResultBackend(dynamo.Options(DynamoDbServer.NewTable()));

        Assert.Null(await backend.AddChordPartAsync(new ChordPartReturn(Guid.NewGuid().ToString(), 0, "a", TaskStates.Success, "1"u8.ToArray(), null), Ct));
    }

    [Fact]
    public async Task App_DynamoDbUrl_StoresAndReadsThroughTheRegistry()
    {
        string table = DynamoDbServer.NewTable();
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://" + Guid.NewGuid().ToString("N"), ResultBackend = dynamo.Server.Url(table) });
        string id = Guid.NewGuid().ToString();

        var backend = Assert.IsType<DynamoDbResultBackend>(app.ResultBackend);
        await backend.StoreAsync(Success(id), Ct);

        Assert.Equal(table, backend.Table);
        Assert.Equal(42, await app.AsyncResult(id).GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
    }
}

/// <summary>A DynamoDB that never answered: the caller hears so after the connect timeout, not the outage patience.</summary>
public sealed class DynamoDbNeverReachedTests
{
    private const string Secret = "never-shown-dynamodb-secret";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GetAsync_NothingListens_BrokerUnreachableAfterTheConnectTimeout_WithoutTheSecret()
    {
        int port = FreePort.Next();
        await using var backend = new DynamoDbResultBackend(new ResultBackendOptions { Url = new Uri($"dynamodb://key:{Secret}@127.0.0.1:{port}/results"), ConnectTimeout = TimeSpan.FromSeconds(1) });
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<BrokerUnreachableException>(() => backend.GetAsync(Guid.NewGuid().ToString(), Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        Assert.Contains($"DynamoDB at http://127.0.0.1:{port}/ table results", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, error.ToString(), StringComparison.Ordinal);
    }
}

/// <summary>A DynamoDB that goes away and comes back: a test class of its own, since it stops its server.</summary>
public sealed class DynamoDbOutageTests : IAsyncLifetime
{
    private readonly DynamoDbServerFixture _fixture = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => _fixture.InitializeAsync();

    public ValueTask DisposeAsync() => _fixture.DisposeAsync();

    [Fact]
    public async Task ServerGone_ReadFailsClearlyAfterItsPatience_WriteWaitsUntilItIsBack()
    {
        await using var backend = new DynamoDbResultBackend(_fixture.Options(DynamoDbServer.NewTable())) { ReadPatience = TimeSpan.FromSeconds(1.5), WritePatience = TimeSpan.FromSeconds(30) };
        string id = Guid.NewGuid().ToString();
        await backend.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Started }, Ct);
        await _fixture.Server.Emulator.StopAsync();

        var started = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<TimeoutException>(() => backend.GetAsync(id, Ct).AsTask());
        Assert.Contains("DynamoDB at http://localhost:" + _fixture.Server.Port, error.Message, StringComparison.Ordinal);
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(20));

        Task store = backend.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Success, Result = "7"u8.ToArray() }, Ct).AsTask();
        await Task.Delay(500, Ct);
        Assert.False(store.IsCompleted);
        await _fixture.Server.Emulator.StartAgainAsync(Ct);
        await store.WaitAsync(TimeSpan.FromSeconds(20), Ct);

        Assert.Equal(TaskStates.Success, (await backend.GetAsync(id, Ct))?.Status);
    }
}
