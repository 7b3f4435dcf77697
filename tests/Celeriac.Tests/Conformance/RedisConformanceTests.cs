using System.Text;
using Celeriac.Redis;
using Celeriac.Results;
using Celeriac.TestServers;
using Celeriac.Transport;

namespace Celeriac.Tests.Conformance;

/// <summary>One real redis-server for a test class; each test starts from an empty server.</summary>
public sealed class RedisServerFixture : IAsyncLifetime
{
    public RedisServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await RedisServer.StartAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

public sealed class RedisTransportConformanceTests(RedisServerFixture redis) : TransportConformanceTests, IClassFixture<RedisServerFixture>
{
    protected override ValueTask<ITransport> CreateTransportAsync(TransportSetup setup) =>
        ValueTask.FromResult<ITransport>(new RedisTransport(
            new TransportOptions
            {
                Url = new Uri(redis.Server.Url(0)),
                VisibilityTimeout = setup.VisibilityTimeout ?? TimeSpan.FromHours(1),
            },
            ownConnection: setup.Peer));

    protected override ValueTask KillAsync(ITransport transport) => ((RedisTransport)transport).KillAsync();

    protected override async ValueTask DisposeStoreAsync() => await redis.Server.CliAsync("FLUSHALL");
}

public sealed class RedisResultBackendConformanceTests(RedisServerFixture redis) : ResultBackendConformanceTests, IClassFixture<RedisServerFixture>
{
    protected override bool ExpiresOnServerClock => true;

    protected override ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup) =>
        ValueTask.FromResult<IResultBackend>(new RedisResultBackend(new ResultBackendOptions
        {
            Url = new Uri(redis.Server.Url(1)),
            ResultExpires = setup.Expires ?? TimeSpan.FromDays(1),
            PollInterval = TimeSpan.FromMilliseconds(100),
        }));

    protected override async ValueTask<byte[]?> ReadRawAsync(string key)
    {
        string value = (await redis.Server.CliAsync("-n", "1", "GET", key)).TrimEnd('\n');
        return value.Length == 0 ? null : Encoding.UTF8.GetBytes(value);
    }

    protected override async ValueTask DisposeStoreAsync() => await redis.Server.CliAsync("FLUSHALL");
}

public sealed class RedisChordJoinTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void ChordMember_IsCelerysBytes()
    {
        using System.Text.Json.JsonDocument golden = Support.WireSamples.Load("redis-result-chord-keys.json");
        foreach (System.Text.Json.JsonElement command in golden.RootElement.GetProperty("chord_key_commands").EnumerateArray())
        {
            System.Text.Json.JsonElement args = command.GetProperty("args");
            if (args[0].GetString() != "ZADD")
            {
                continue;
            }

            System.Text.Json.JsonElement member = command.GetProperty("decoded");
            byte[] ours = RedisResultBackend.ChordMember(member[1].GetString()!, member[2].GetString()!, Encoding.UTF8.GetBytes(member[3].GetRawText()));
            Assert.Equal(args[3].GetString(), Encoding.UTF8.GetString(ours));
        }
    }

    [Fact]
    public async Task AddChordPartAsync_LastMember_GetsAllPartsInGroupOrderAndKeysAreGone()
    {
        await using var backend = new RedisResultBackend(new ResultBackendOptions { Url = new Uri(redis.Server.Url(1)) });
        string group = Guid.NewGuid().ToString();
        await backend.BeginChordAsync(group, ["a", "b"], 2, ct: Ct);

        Assert.Null(await backend.AddChordPartAsync(new ChordPartReturn(group, 1, "b", TaskStates.Success, "4"u8.ToArray(), null), Ct));
        IReadOnlyList<ChordPart>? all = (await backend.AddChordPartAsync(new ChordPartReturn(group, 0, "a", TaskStates.Success, "2"u8.ToArray(), null), Ct))?.Parts;

        Assert.NotNull(all);
        Assert.Equal([("a", "2"), ("b", "4")], all.Select(p => (p.TaskId, p.Result.GetRawText())));
        Assert.Equal("0", (await redis.Server.CliAsync("-n", "1", "EXISTS", $"celery-taskset-meta-{group}.j", $"celery-taskset-meta-{group}.s")).Trim());
    }
}

public sealed class RedisPublishOnceTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PublishOnce_RetriedBatch_IsPushedOnce_AndConfirmedIdsLeaveTheLedger()
    {
        await using var multiplexer = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Server.Port}");
        StackExchange.Redis.IDatabase db = multiplexer.GetDatabase(6);
        string p = Guid.NewGuid().ToString("N") + ":";
        StackExchange.Redis.RedisKey[] keys = [p + "ledger", p + "q1", p + "q2"];
        StackExchange.Redis.RedisValue[] Args(string batch, params StackExchange.Redis.RedisValue[] confirmed) =>
            [batch, 1000.0, 600.0, confirmed.Length, .. confirmed, 2, "a", "b", 1, "c"];

        Assert.Equal(1, (int)await db.ScriptEvaluateAsync(RedisScripts.PublishOnce, keys, Args("one")));
        // The same batch again, as a retry after a lost reply: nothing more is pushed.
        Assert.Equal(0, (int)await db.ScriptEvaluateAsync(RedisScripts.PublishOnce, keys, Args("one")));
        Assert.Equal(["b", "a"], (await db.ListRangeAsync(p + "q1")).Select(v => v.ToString()));
        Assert.Equal(["c"], (await db.ListRangeAsync(p + "q2")).Select(v => v.ToString()));

        // The next batch drops the confirmed one: the ledger holds only batches whose reply is not yet known.
        Assert.Equal(1, (int)await db.ScriptEvaluateAsync(RedisScripts.PublishOnce, keys, Args("two", "one")));
        Assert.Equal(["two"], (await db.SortedSetRangeByRankAsync(p + "ledger")).Select(v => v.ToString()));
        Assert.Equal(4, await db.ListLengthAsync(p + "q1"));
    }
}

public sealed class RedisKeyPrefixTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GlobalKeyPrefix_EveryKeyKombuWrites_CarriesIt()
    {
        await using var t = new RedisTransport(new TransportOptions { Url = new Uri(redis.Server.Url(5) + "?global_keyprefix=app1:") });
        await t.DeclareQueueAsync(new QueueDeclaration("q", "q", "q"), Ct);
        await t.PublishAsync("", "q", [new TransportMessage { Body = "[[1], {}, {}]"u8.ToArray(), Priority = 9 }], Ct);
        Assert.Equal("app1:_kombu.binding.q\napp1:celeriac.publishing\napp1:q" + RedisTransport.Separator + "9", string.Join('\n', (await redis.Server.CliAsync("-n", "5", "KEYS", "*")).Trim().Split('\n').Order(StringComparer.Ordinal)));

        using var within = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        within.CancelAfter(TimeSpan.FromSeconds(10));
        await foreach (Delivery d in t.ConsumeAsync(new ConsumeOptions { Queues = ["q"] }, within.Token))
        {
            Assert.Contains("app1:unacked", await redis.Server.CliAsync("-n", "5", "KEYS", "*"), StringComparison.Ordinal);
            await d.AckAsync(Ct);
            break;
        }

        Assert.Equal(0, await t.GetQueueLengthAsync("q", Ct));
    }
}

public sealed class RedisBeatStoreConformanceTests(RedisServerFixture redis) : BeatStoreConformanceTests, IClassFixture<RedisServerFixture>
{
    // Tests share the server: each has keys of its own.
    private readonly string _prefix = "beat-test-" + Guid.NewGuid().ToString("N") + ":";

    protected override bool LeaseOnServerClock => true;

    // Each store has its own connection, as another process would.
    protected override Celeriac.Beat.IBeatStore CreateStore(TimeProvider time) =>
        new RedisBeatStore(new Uri(redis.Server.Url(2)), null, _prefix, ownConnection: true);

    [Fact]
    public async Task Registry_RedisUrl_KeysUnderTheUrlsPrefixInTheUrlsDatabase()
    {
        await using var app = new CeleriacApp(new CeleriacOptions());
        Celeriac.Beat.IBeatStore? created = app.Providers.CreateExtension<Celeriac.Beat.IBeatStore>(new Uri(redis.Server.Url(3) + "?beat_key_prefix=" + Uri.EscapeDataString(_prefix)), app);
        await using var store = Assert.IsType<RedisBeatStore>(created);
        Assert.Equal(_prefix, store.KeyPrefix);

        Celeriac.Beat.BeatEntry entry = Interval("e");
        await store.SaveAsync(entry, Ct);
        Assert.True(await store.TryHoldLeaseAsync("beat-1", TimeSpan.FromMinutes(1), Ct));
        Assert.True(await store.TryRecordRunAsync("beat-1", "e", null, new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), Ct));

        string[] keys = (await redis.Server.CliAsync("-n", "3", "KEYS", _prefix + "*")).Trim().Split('\n').Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["definitions", "enabled", "last_run_at", "lock", "total_run_count"], keys.Select(k => k[_prefix.Length..]));
        Assert.Equal(entry.DefinitionJson(), (await redis.Server.CliAsync("-n", "3", "HGET", _prefix + "definitions", "e")).TrimEnd('\n'));
        Assert.Equal("beat-1", (await redis.Server.CliAsync("-n", "3", "GET", _prefix + "lock")).Trim());
        Assert.InRange(long.Parse((await redis.Server.CliAsync("-n", "3", "PTTL", _prefix + "lock")).Trim(), System.Globalization.CultureInfo.InvariantCulture), 1, 60_000);
        Assert.Equal("0", (await redis.Server.CliAsync("-n", "2", "EXISTS", _prefix + "definitions")).Trim());
    }

    [Fact]
    public async Task DefaultPrefix_IsCeleriacBeat_AfterTheGlobalKeyPrefix()
    {
        await using var plain = new RedisBeatStore(new Uri(redis.Server.Url(4)));
        Assert.Equal("celeriac:beat:", plain.KeyPrefix);
        await using var global = new RedisBeatStore(new Uri(redis.Server.Url(4) + "?global_keyprefix=app1:"));
        Assert.Equal("app1:celeriac:beat:", global.KeyPrefix);
    }
}
