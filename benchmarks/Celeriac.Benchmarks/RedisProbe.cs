using System.Diagnostics;
using Celeriac.TestServers;
using StackExchange.Redis;

namespace Celeriac.Benchmarks;

/// <summary>Database 0's keys as <c>DUMP</c> gave them, to put back with <c>RESTORE</c>.</summary>
internal sealed record RedisSnapshot(IReadOnlyList<(RedisKey Key, byte[] Value)> Keys);

/// <summary>
/// The benchmark's own view of the server, outside the workers it times: the broker in database 0 (kombu's layout:
/// the queue <c>celery</c> and its priority lists <c>celery\x06\x16{3,6,9}</c>, the <c>unacked</c> hash) and the
/// results in database 1 (<c>celery-task-meta-&lt;id&gt;</c>, nothing else there). What a Celery client sent is
/// kept as DUMPs of database 0 and RESTOREd before each drain.
/// </summary>
internal sealed class RedisProbe : IBrokerProbe
{
    public const int BrokerDb = 0;
    public const int BackendDb = 1;
    private const string ResultPrefix = "celery-task-meta-";
    private const int Batch = 1000;

    private static readonly RedisKey[] s_queueLists =
        [BenchTasks.Queue, BenchTasks.Queue + "\x06\x163", BenchTasks.Queue + "\x06\x166", BenchTasks.Queue + "\x06\x169"];

    private readonly ConnectionMultiplexer _redis;
    private readonly IServer _server;
    private readonly IDatabase _broker;
    private readonly IDatabase _backend;
    private readonly Dictionary<string, RedisSnapshot> _kept = new(StringComparer.Ordinal);

    private RedisProbe(ConnectionMultiplexer redis, RedisServer server)
    {
        _redis = redis;
        _server = redis.GetServer("127.0.0.1", server.Port);
        _broker = redis.GetDatabase(BrokerDb);
        _backend = redis.GetDatabase(BackendDb);
        BrokerUrl = server.Url(BrokerDb);
        BackendUrl = server.Url(BackendDb);
    }

    /// <summary>What ends a drain: the table's words.</summary>
    public static DrainEnds Ends { get; } = new("last result stored", "queue and unacked empty");

    public string Transport => "redis";

    public string BrokerUrl { get; }

    public string BackendUrl { get; }

    public string ResultsNote => "results in redis db 1";

    public static async Task<RedisProbe> ConnectAsync(RedisServer server)
    {
        var config = new ConfigurationOptions { AllowAdmin = true, AbortOnConnectFail = true, ConnectTimeout = 10_000, SyncTimeout = 30_000, AsyncTimeout = 30_000 };
        config.EndPoints.Add("127.0.0.1", server.Port);
        return new RedisProbe(await ConnectionMultiplexer.ConnectAsync(config), server);
    }

    public override string ToString() => $"redis-server on {_server.EndPoint}, broker {BrokerUrl}, results {BackendUrl}";

    /// <summary>Empties every database.</summary>
    public Task ResetAsync() => _server.FlushAllDatabasesAsync();

    /// <summary>The messages waiting in the queue's lists.</summary>
    public async Task<long> QueuedAsync()
    {
        Task<long>[] lengths = [.. s_queueLists.Select(k => _broker.ListLengthAsync(k))];
        long sum = 0;
        foreach (Task<long> t in lengths)
        {
            sum += await t;
        }

        return sum;
    }

    /// <summary>Queue lists, <c>unacked</c> and the result count, in one round of pipelined commands.</summary>
    public async Task<DrainState> StateAsync()
    {
        Task<long> queued = QueuedAsync();
        Task<long> unacked = _broker.HashLengthAsync("unacked");
        Task<long> results = _server.DatabaseSizeAsync(BackendDb);
        return new DrainState(await queued, await unacked, await results);
    }

    /// <summary>DUMPs every key of database 0 (the queue lists kombu filled), then empties every database.</summary>
    public async Task<string> KeepAsync(string name, int count)
    {
        long queued = await QueuedAsync();
        if (queued != count)
        {
            throw new InvalidOperationException($"{queued} messages queued after the Celery client, not {count}");
        }

        var keys = new List<(RedisKey, byte[])>();
        await foreach (RedisKey key in _server.KeysAsync(BrokerDb, "*", pageSize: Batch))
        {
            byte[] value = await _broker.KeyDumpAsync(key) ?? throw new InvalidOperationException($"key {key} vanished");
            keys.Add((key, value));
        }

        _kept[name] = new RedisSnapshot(keys);
        await ResetAsync();
        return $"{queued} messages, {keys.Count} keys DUMPed: {string.Join(", ", keys.Select(k => k.Item1.ToString()))}";
    }

    /// <summary>RESTOREs a snapshot into database 0 (which must not hold its keys).</summary>
    public async Task RestoreAsync(string name)
    {
        foreach ((RedisKey key, byte[] value) in _kept[name].Keys)
        {
            await _broker.KeyRestoreAsync(key, value);
        }
    }

    /// <summary>The queue lists and <c>unacked</c> (the drain loop polls the same: this is one more look after a drain with results).</summary>
    public async Task<string> ConfirmEmptyAsync(TimeSpan timeout)
    {
        long start = Stopwatch.GetTimestamp();
        DrainState state;
        while ((state = await StateAsync()) is not { Queued: 0, Unacked: 0 })
        {
            if (Stopwatch.GetElapsedTime(start) > timeout)
            {
                throw new TimeoutException($"{state} {timeout.TotalSeconds:0} s after the drain");
            }

            await Task.Delay(5);
        }

        return "queue lists and unacked empty";
    }

    /// <summary>Reads every result in database 1: there must be <paramref name="count"/>, all SUCCESS with an integer result.</summary>
    public async Task VerifyResultsAsync(int count)
    {
        var keys = new List<RedisKey>(count);
        await foreach (RedisKey key in _server.KeysAsync(BackendDb, ResultPrefix + "*", pageSize: Batch))
        {
            keys.Add(key);
            if (keys.Count > 2 * count)
            {
                break;
            }
        }

        var check = new ResultCheck();
        for (int i = 0; i < keys.Count; i += Batch)
        {
            RedisValue[] values = await _backend.StringGetAsync([.. keys.Skip(i).Take(Batch)]);
            for (int j = 0; j < values.Length; j++)
            {
                check.Add(keys[i + j].ToString(), values[j].IsNull ? null : (byte[])values[j]!);
            }
        }

        check.ThrowUnless(count);
    }

    public async ValueTask DisposeAsync() => await _redis.DisposeAsync();
}
