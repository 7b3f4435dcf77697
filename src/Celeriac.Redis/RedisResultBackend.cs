using System.Collections.Concurrent;
using System.Text.Json;
using Celeriac.Concurrency;
using Celeriac.Results;
using StackExchange.Redis;

namespace Celeriac.Redis;

/// <summary>
/// Celery's Redis result backend: <c>SETEX celery-task-meta-&lt;id&gt; &lt;expires&gt; &lt;json&gt;</c> followed by a
/// PUBLISH of the same document on a channel of the same name, so that a waiting client (Python or .NET),
/// subscribed to that channel, has its result pushed instead of polling for it.
/// Writes made while Redis is away are retried with back-off until it is back (for up to 5 minutes), so a
/// restart of Redis loses no result.
/// </summary>
public sealed class RedisResultBackend : KeyValueResultBackend
{
    private static readonly TimeSpan s_readPatience = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan s_writePatience = TimeSpan.FromMinutes(5);

    private readonly RedisConnection _connection;
    private readonly int _db;
    private readonly KeyWaiterTable _waiters = new();
    private readonly ConcurrentDictionary<string, byte> _watched = new(StringComparer.Ordinal);
    private readonly Action<RedisChannel, RedisValue> _onPublished;
    private readonly Batcher<Write> _writes;
    private int _disposed;

    /// <summary>Connects (lazily, reconnecting by itself) to the server named by <see cref="ResultBackendOptions.Url"/>.</summary>
    public RedisResultBackend(ResultBackendOptions options)
        : base(options)
    {
        RedisEndpoint endpoint = RedisEndpoint.Parse(options.Url, options.ConnectTimeout);
        _connection = RedisConnection.Acquire(endpoint, options.LoggerFactory);
        _db = endpoint.Database;
        _onPublished = (channel, _) => Wake(channel.ToString());
        _writes = new Batcher<Write>(SendWritesAsync);
    }

    /// <inheritdoc />
    protected override KeyWaiterTable Waiters => _waiters;

    private async Task<IDatabase> DatabaseAsync() => await _connection.DatabaseAsync(_db).ConfigureAwait(false);

    /// <inheritdoc />
    protected override async ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct) =>
        await _connection.RunAsync(
            async () => (byte[]?)await (await DatabaseAsync().ConfigureAwait(false)).StringGetAsync(key).ConfigureAwait(false),
            s_readPatience,
            ct).ConfigureAwait(false);

    /// <inheritdoc />
    protected override ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct) =>
        new(_writes.Enqueue(new Write(key, value, expiry)));

    /// <summary>
    /// Sends a batch of results: each one's <c>SETEX</c> (or <c>SET</c> without an expiry) then its <c>PUBLISH</c>, all in
    /// one script call, so that a batch costs the client one command instead of two per result. Once begun, a write is
    /// seen through: a result must not be half stored because a caller gave up. The script does the same commands in the
    /// same order as sending them one by one, so a Celery client sees what Celery's backend writes.
    /// </summary>
    private Task<bool> SendWritesAsync(Write[] writes)
    {
        var keys = new RedisKey[writes.Length];
        var args = new RedisValue[writes.Length * 2];
        for (int i = 0; i < writes.Length; i++)
        {
            Write w = writes[i];
            keys[i] = w.Key;
            args[2 * i] = w.Expiry is { } ttl ? (long)Math.Max(1, Math.Ceiling(ttl.TotalMilliseconds)) : RedisValue.EmptyString;
            args[(2 * i) + 1] = w.Value;
        }

        return _connection.RunAsync(
            async () =>
            {
                IDatabase db = await DatabaseAsync().ConfigureAwait(false);
                await db.ScriptEvaluateAsync(s_storeResults, keys, args).ConfigureAwait(false);
                return true;
            },
            s_writePatience,
            CancellationToken.None);
    }

    /// <summary>KEYS: the results' keys; ARGV: per key its expiry in milliseconds ('' for none) and its document.</summary>
    private const string s_storeResults = """
        for i = 1, #KEYS do
          local ttl, doc = ARGV[2 * i - 1], ARGV[2 * i]
          if ttl == '' then
            redis.call('SET', KEYS[i], doc)
          elseif tonumber(ttl) % 1000 == 0 then
            redis.call('SETEX', KEYS[i], tonumber(ttl) / 1000, doc)
          else
            redis.call('PSETEX', KEYS[i], ttl, doc)
          end
          redis.call('PUBLISH', KEYS[i], doc)
        end
        return #KEYS
        """;

    private readonly record struct Write(string Key, byte[] Value, TimeSpan? Expiry);

    /// <inheritdoc />
    protected override async ValueTask DeleteValueAsync(string key, CancellationToken ct) =>
        await _connection.RunAsync(
            async () => await (await DatabaseAsync().ConfigureAwait(false)).KeyDeleteAsync(key).ConfigureAwait(false),
            s_writePatience,
            ct).ConfigureAwait(false);

    /// <inheritdoc />
    protected override async ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct) =>
        await _connection.RunAsync(
            async () =>
            {
                IDatabase db = await DatabaseAsync().ConfigureAwait(false);
                Task<long> count = db.StringIncrementAsync(key);
                Task<bool> expire = expiry is { } ttl ? db.KeyExpireAsync(key, ttl) : Task.FromResult(true);
                await Task.WhenAll(count, expire).ConfigureAwait(false);
                return await count.ConfigureAwait(false);
            },
            s_writePatience,
            ct).ConfigureAwait(false);

    /// <summary>
    /// Celery's Redis chord join, first step: the client stores the chord's size under
    /// <c>celery-taskset-meta-&lt;group id&gt;.s</c> before it sends the header.
    /// </summary>
    public override async ValueTask BeginChordAsync(string groupId, IReadOnlyList<string> headerIds, int size, ReadOnlyMemory<byte> nestedHeader = default, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(groupId);
        if (!nestedHeader.IsEmpty)
        {
            // As Celery's apply_chord: a header with groups in it is saved, so that the join nests their results.
            await SaveGroupTuplesAsync(groupId, nestedHeader, ct).ConfigureAwait(false);
        }

        string key = GroupKeyPrefix + groupId + ".s";
        await _connection.RunAsync(
            async () =>
            {
                IDatabase db = await DatabaseAsync().ConfigureAwait(false);
                return Options.ResultExpires is { } ttl ? await db.StringSetAsync(key, size, ttl).ConfigureAwait(false) : await db.StringSetAsync(key, size).ConfigureAwait(false);
            },
            s_writePatience,
            ct).ConfigureAwait(false);
    }

    /// <summary>Celery's <c>add_to_chord</c> on Redis: <c>INCRBY &lt;group key&gt;.t</c>.</summary>
    public override async ValueTask ExtendChordAsync(string groupId, int count, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(groupId);
        string key = GroupKeyPrefix + groupId + ".t";
        await _connection.RunAsync(
            async () => await (await DatabaseAsync().ConfigureAwait(false)).StringIncrementAsync(key, count).ConfigureAwait(false),
            s_writePatience,
            ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Celery's Redis chord join, per finished member (its <c>on_chord_part_return</c>), in one Lua script so that two
    /// members ending together cannot both complete the chord: ZADD <c>[1, id, state, result]</c> to
    /// <c>&lt;group key&gt;.j</c> at the member's group index, compare the count with <c>.s</c> + <c>.t</c>, and for the
    /// member that completes it read every part in group order (and the saved header, for a nested one). As Celery, the
    /// parts stay in <c>.j</c> (until they expire) when one failed, for whoever looks into the failure; the size goes at
    /// once, so that a part delivered again later cannot complete the chord a second time.
    /// </summary>
    public override async ValueTask<ChordJoin?> AddChordPartAsync(ChordPartReturn part, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(part);
        string group = GroupKeyPrefix + part.GroupId;
        RedisKey[] keys = [group + ".j", group + ".t", group + ".s", group];
        RedisValue[] args =
        [
            ChordMember(part.TaskId, part.State, part.Result.Span),
            part.GroupIndex is { } index ? index : "+inf",
            Options.ResultExpires is { } ttl ? (long)Math.Ceiling(ttl.TotalSeconds) : 0,
        ];
        RedisResult result = await _connection.RunAsync(
            async () => await (await DatabaseAsync().ConfigureAwait(false)).ScriptEvaluateAsync(s_chordPart, keys, args).ConfigureAwait(false),
            s_writePatience,
            ct).ConfigureAwait(false);
        if (result.IsNull || result.Resp2Type != ResultType.Array)
        {
            return null;
        }

        var all = (RedisResult[])result!;
        byte[]? saved = (byte[]?)all[0];
        JsonElement? tuples = saved is { Length: > 0 } ? MemberTuples(saved) : null;
        return new ChordJoin(
            [.. all.Skip(1).Select(m => ParsePart((byte[])m!))],
            tuples is { } t && IsNested(t) ? System.Text.Encoding.UTF8.GetBytes(t.GetRawText()) : null);
    }

    private const string s_chordPart = """
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
        local count = redis.call('ZCARD', KEYS[1])
        local extra = tonumber(redis.call('GET', KEYS[2]) or '0')
        local size = redis.call('GET', KEYS[3])
        local ttl = tonumber(ARGV[3])
        if ttl > 0 then
          redis.call('EXPIRE', KEYS[1], ttl)
          redis.call('EXPIRE', KEYS[2], ttl)
          redis.call('EXPIRE', KEYS[3], ttl)
        end
        if not size then return false end
        if count ~= tonumber(size) + extra then return false end
        local all = redis.call('ZRANGE', KEYS[1], 0, -1)
        local failed = false
        for _, m in ipairs(all) do
          local ok, v = pcall(cjson.decode, m)
          if ok and type(v) == 'table' and (v[3] == 'FAILURE' or v[3] == 'REVOKED') then
            failed = true
            break
          end
        end
        redis.call('DEL', KEYS[2], KEYS[3])
        if not failed then redis.call('DEL', KEYS[1]) end
        table.insert(all, 1, redis.call('GET', KEYS[4]) or '')
        return all
        """;

    private static ChordPart ParsePart(byte[] member)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(member);
        System.Text.Json.JsonElement e = doc.RootElement;
        return new ChordPart(e[1].GetString()!, e[2].GetString()!, e[3].Clone());
    }

    /// <summary>The <c>.j</c> member of a chord part, byte for byte as Celery's <c>json.dumps([1, id, state, result])</c>.</summary>
    internal static byte[] ChordMember(string taskId, string state, ReadOnlySpan<byte> resultJson)
    {
        using var buffer = new MemoryStream(64 + resultJson.Length);
        buffer.Write("[1, "u8);
        WriteString(buffer, taskId);
        buffer.Write(", "u8);
        WriteString(buffer, state);
        buffer.Write(", "u8);
        buffer.Write(resultJson);
        buffer.Write("]"u8);
        return buffer.ToArray();

        static void WriteString(MemoryStream to, string value)
        {
            using var w = new System.Text.Json.Utf8JsonWriter(to);
            w.WriteStringValue(value);
        }
    }

    /// <summary>Subscribes to the key's channel (Celery's backend publishes every write there).</summary>
    protected override async ValueTask WatchAsync(string key, CancellationToken ct)
    {
        ISubscriber subscriber = (await _connection.MultiplexerAsync().ConfigureAwait(false)).GetSubscriber();
        await _connection.RunAsync(
            async () =>
            {
                await subscriber.SubscribeAsync(RedisChannel.Literal(key), _onPublished).ConfigureAwait(false);
                return true;
            },
            s_readPatience,
            ct).ConfigureAwait(false);
        _watched.TryAdd(key, 0);
    }

    /// <inheritdoc />
    protected override void Unwatch(string key)
    {
        if (_watched.TryRemove(key, out _) && Volatile.Read(ref _disposed) == 0 && _connection.MultiplexerAsync() is { IsCompletedSuccessfully: true } mux)
        {
            // Fire and forget: the reply carries nothing a waiter needs, and an outage drops the subscription anyway.
            _ = mux.Result.GetSubscriber().UnsubscribeAsync(RedisChannel.Literal(key), _onPublished, CommandFlags.FireAndForget);
        }
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _writes.DrainAsync().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!_watched.IsEmpty && _connection.MultiplexerAsync() is { IsCompletedSuccessfully: true } mux)
        {
            ISubscriber subscriber = mux.Result.GetSubscriber();
            foreach (string key in _watched.Keys)
            {
                _ = subscriber.UnsubscribeAsync(RedisChannel.Literal(key), _onPublished, CommandFlags.FireAndForget);
            }
        }

        await _connection.ReleaseAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
