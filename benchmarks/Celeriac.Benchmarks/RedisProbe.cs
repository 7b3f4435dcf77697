using System.Globalization;
using System.Text.Json;
using StackExchange.Redis;

namespace Celeriac.Benchmarks;

/// <summary>What a drain has left: messages in kombu's queue lists and <c>unacked</c> hash, results stored.</summary>
internal readonly record struct DrainState(long Queued, long Unacked, long Results)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Queued} queued, {Unacked} unacked, {Results} results");
}

/// <summary>Database 0's keys as <c>DUMP</c> gave them, to put back with <c>RESTORE</c>.</summary>
internal sealed record RedisSnapshot(IReadOnlyList<(RedisKey Key, byte[] Value)> Keys);

/// <summary>
/// The benchmark's own view of the server, outside the workers it times: the broker in database 0 (kombu's layout:
/// the queue <c>celery</c> and its priority lists <c>celery\x06\x16{3,6,9}</c>, the <c>unacked</c> hash) and the
/// results in database 1 (<c>celery-task-meta-&lt;id&gt;</c>, nothing else there).
/// </summary>
internal sealed class RedisProbe : IAsyncDisposable
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

    private RedisProbe(ConnectionMultiplexer redis, int port)
    {
        _redis = redis;
        _server = redis.GetServer("127.0.0.1", port);
        _broker = redis.GetDatabase(BrokerDb);
        _backend = redis.GetDatabase(BackendDb);
    }

    public static async Task<RedisProbe> ConnectAsync(int port)
    {
        var config = new ConfigurationOptions { AllowAdmin = true, AbortOnConnectFail = true, ConnectTimeout = 10_000, SyncTimeout = 30_000, AsyncTimeout = 30_000 };
        config.EndPoints.Add("127.0.0.1", port);
        return new RedisProbe(await ConnectionMultiplexer.ConnectAsync(config), port);
    }

    /// <summary>Empties every database (between phases, with no worker running).</summary>
    public Task FlushAsync() => _server.FlushAllDatabasesAsync();

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

    /// <summary>DUMPs every key of database 0.</summary>
    public async Task<RedisSnapshot> SnapshotAsync()
    {
        var keys = new List<(RedisKey, byte[])>();
        await foreach (RedisKey key in _server.KeysAsync(BrokerDb, "*", pageSize: Batch))
        {
            byte[] value = await _broker.KeyDumpAsync(key) ?? throw new InvalidOperationException($"key {key} vanished");
            keys.Add((key, value));
        }

        return new RedisSnapshot(keys);
    }

    /// <summary>RESTOREs a snapshot into database 0 (which must not hold its keys).</summary>
    public async Task RestoreAsync(RedisSnapshot snapshot)
    {
        foreach ((RedisKey key, byte[] value) in snapshot.Keys)
        {
            await _broker.KeyRestoreAsync(key, value);
        }
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

        int success = 0;
        string? first = null;
        for (int i = 0; i < keys.Count; i += Batch)
        {
            RedisValue[] values = await _backend.StringGetAsync([.. keys.Skip(i).Take(Batch)]);
            for (int j = 0; j < values.Length; j++)
            {
                string? problem = CheckResult(values[j]);
                if (problem is null)
                {
                    success++;
                }
                else
                {
                    first ??= $"{keys[i + j]}: {problem}";
                }
            }
        }

        if (success != count || first is not null)
        {
            throw new InvalidOperationException($"{keys.Count} results stored, {success} SUCCESS with an integer result, {count} expected; first other: {first}");
        }
    }

    private static string? CheckResult(RedisValue value)
    {
        if (value.IsNull)
        {
            return "gone";
        }

        try
        {
            using JsonDocument json = JsonDocument.Parse((byte[])value!);
            JsonElement root = json.RootElement;
            string? status = root.TryGetProperty("status", out JsonElement s) ? s.GetString() : null;
            bool integer = root.TryGetProperty("result", out JsonElement r) && r.ValueKind == JsonValueKind.Number && r.TryGetInt64(out _);
            return status == "SUCCESS" && integer ? null : $"status {status}, result {(root.TryGetProperty("result", out JsonElement rr) ? rr.GetRawText() : "none")}";
        }
        catch (JsonException ex)
        {
            return "not JSON: " + ex.Message;
        }
    }

    public async ValueTask DisposeAsync() => await _redis.DisposeAsync();
}
