using System.Globalization;
using System.Text.Json;
using Celeriac.Beat;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Celeriac.Redis;

/// <summary>
/// Beat's entries, their last runs and the one-sender lease in Redis, under a key prefix (<c>celeriac:beat:</c>, or the
/// URL's <c>beat_key_prefix</c>, after kombu's <c>global_keyprefix</c> if any):
/// <list type="bullet">
/// <item><c>&lt;prefix&gt;definitions</c>: a hash, entry name → its definition (<see cref="BeatEntry.DefinitionJson"/>);</item>
/// <item><c>&lt;prefix&gt;enabled</c>, <c>&lt;prefix&gt;last_run_at</c> (UTC ticks, absent before a first run),
/// <c>&lt;prefix&gt;total_run_count</c>: hashes of the state, by entry name;</item>
/// <item><c>&lt;prefix&gt;lock</c>: the lease, <c>SET lock holder NX PX ms</c>, expiring by the server's clock.</item>
/// </list>
/// Every method is one Lua script, so each is atomic on the server: recording a run checks the lease holder and the
/// last run in the same step that changes it. Every script names all its keys, so a prefix with a hash tag
/// (<c>{beat}:</c>) keeps them in one slot.
/// </summary>
public sealed class RedisBeatStore : IBeatStore
{
    /// <summary>The key prefix when none is given.</summary>
    public const string DefaultKeyPrefix = "celeriac:beat:";

    // Short: beat retries on its next tick, and a lease renewal that waits longer than the lease is worthless.
    private static readonly TimeSpan s_patience = TimeSpan.FromSeconds(5);

    private const string LoadScript = """
        return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]), redis.call('HGETALL', KEYS[4])}
        """;

    // A new entry takes its state from the caller; an existing one keeps its own and changes only its definition.
    private const string SaveScript = """
        local new = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        if new then
          redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
          if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) else redis.call('HDEL', KEYS[3], ARGV[1]) end
          redis.call('HSET', KEYS[4], ARGV[1], ARGV[5])
          return 1
        end
        return 0
        """;

    private const string RemoveScript = """
        local n = redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('HDEL', KEYS[2], ARGV[1])
        redis.call('HDEL', KEYS[3], ARGV[1])
        redis.call('HDEL', KEYS[4], ARGV[1])
        return n
        """;

    // Only an existing entry: a lone enabled field would be state without a definition.
    private const string EnableScript = """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        return 1
        """;

    // Take the lease if free (or expired: the key is gone), else renew it only if we hold it.
    private const string HoldScript = """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          return 1
        end
        return 0
        """;

    // The compare-and-set that decides a send: the lease is ours, the entry exists and its last run is still the one
    // the caller saw ('' = never ran). KEYS: lock, definitions, last_run_at, total_run_count.
    private const string RecordScript = """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 0 end
        local last = redis.call('HGET', KEYS[3], ARGV[2]) or ''
        if last ~= ARGV[3] then return 0 end
        redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
        redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
        return 1
        """;

    private readonly RedisConnection _connection;
    private readonly int _db;
    private readonly RedisKey _definitions;
    private readonly RedisKey _enabled;
    private readonly RedisKey _lastRun;
    private readonly RedisKey _runCount;
    private readonly RedisKey _lock;
    private int _disposed;

    /// <summary>
    /// A store on the server and database named by <paramref name="url"/> (<c>redis://host:port/db</c>, <c>rediss://</c>,
    /// <c>redis+socket://</c>); it connects lazily and shares the process's connection to that server.
    /// </summary>
    /// <param name="url">The server; <c>?beat_key_prefix=</c> sets the prefix, <c>?global_keyprefix=</c> goes before it.</param>
    /// <param name="loggerFactory">Where outages are logged.</param>
    /// <param name="keyPrefix">The key prefix (over the URL's); <see cref="DefaultKeyPrefix"/> when neither gives one.</param>
    public RedisBeatStore(Uri url, ILoggerFactory? loggerFactory = null, string? keyPrefix = null)
        : this(url, loggerFactory, keyPrefix, ownConnection: false)
    {
    }

    /// <summary>A store with a connection of its own, not shared in the process (tests play another process with it).</summary>
    internal RedisBeatStore(Uri url, ILoggerFactory? loggerFactory, string? keyPrefix, bool ownConnection)
    {
        ArgumentNullException.ThrowIfNull(url);
        RedisEndpoint endpoint = RedisEndpoint.Parse(url);
        string prefix = keyPrefix ?? RedisEndpoint.ParseQuery(url.Query).GetValueOrDefault("beat_key_prefix") ?? DefaultKeyPrefix;
        KeyPrefix = endpoint.KeyPrefix + prefix;
        _connection = RedisConnection.Acquire(endpoint, loggerFactory ?? NullLoggerFactory.Instance, ownConnection);
        _db = endpoint.Database;
        _definitions = KeyPrefix + "definitions";
        _enabled = KeyPrefix + "enabled";
        _lastRun = KeyPrefix + "last_run_at";
        _runCount = KeyPrefix + "total_run_count";
        _lock = KeyPrefix + "lock";
    }

    /// <summary>The prefix of every key of the store.</summary>
    public string KeyPrefix { get; }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<BeatEntry>> LoadAsync(CancellationToken ct = default)
    {
        var all = (RedisResult[])(await EvaluateAsync(LoadScript, [_definitions, _enabled, _lastRun, _runCount], [], ct).ConfigureAwait(false))!;
        Dictionary<string, RedisValue> enabled = Pairs(all[1]);
        Dictionary<string, RedisValue> lastRun = Pairs(all[2]);
        Dictionary<string, RedisValue> runCount = Pairs(all[3]);
        var entries = new List<BeatEntry>();
        foreach ((string name, RedisValue definition) in Pairs(all[0]).OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            BeatEntry entry;
            try
            {
                using var document = JsonDocument.Parse((string)definition!);
                entry = BeatEntry.FromJson(name, document.RootElement);
            }
            catch (JsonException ex)
            {
                throw new FormatException($"Beat entry '{name}' under {KeyPrefix}: its stored definition is not JSON ({ex.Message}).", ex);
            }

            entries.Add(entry with
            {
                Enabled = !enabled.TryGetValue(name, out RedisValue e) || (string?)e != "0",
                LastRunAt = lastRun.TryGetValue(name, out RedisValue l) && Number(l) is { } ticks ? new DateTimeOffset(ticks, TimeSpan.Zero) : null,
                TotalRunCount = runCount.TryGetValue(name, out RedisValue c) ? Number(c) ?? 0 : 0,
            });
        }

        return entries;
    }

    /// <inheritdoc />
    public async ValueTask SaveAsync(BeatEntry entry, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await EvaluateAsync(
            SaveScript,
            [_definitions, _enabled, _lastRun, _runCount],
            [entry.Name, entry.DefinitionJson(), entry.Enabled ? "1" : "0", Ticks(entry.LastRunAt), entry.TotalRunCount],
            ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> RemoveAsync(string name, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        return (long)(await EvaluateAsync(RemoveScript, [_definitions, _enabled, _lastRun, _runCount], [name], ct).ConfigureAwait(false)) == 1;
    }

    /// <inheritdoc />
    public async ValueTask<bool> SetEnabledAsync(string name, bool enabled, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        return (long)(await EvaluateAsync(EnableScript, [_definitions, _enabled], [name, enabled ? "1" : "0"], ct).ConfigureAwait(false)) == 1;
    }

    /// <inheritdoc />
    public async ValueTask<bool> TryHoldLeaseAsync(string holder, TimeSpan duration, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(duration, TimeSpan.Zero);
        long ms = Math.Max(1, (long)Math.Ceiling(duration.TotalMilliseconds));
        return (long)(await EvaluateAsync(HoldScript, [_lock], [holder, ms], ct).ConfigureAwait(false)) == 1;
    }

    /// <inheritdoc />
    public async ValueTask ReleaseLeaseAsync(string holder, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(holder);
        await EvaluateAsync(RedisScripts.ReleaseMutex, [_lock], [holder], ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// A call whose reply was lost in an outage is sent again; if the first one had recorded the run, the second finds
    /// the last run moved on and returns false: the run is then recorded but not sent (missed, never sent twice).
    /// </remarks>
    public async ValueTask<bool> TryRecordRunAsync(string holder, string name, DateTimeOffset? expectedLastRun, DateTimeOffset runAt, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentNullException.ThrowIfNull(name);
        return (long)(await EvaluateAsync(
            RecordScript,
            [_lock, _definitions, _lastRun, _runCount],
            [holder, name, Ticks(expectedLastRun), Ticks(runAt)],
            ct).ConfigureAwait(false)) == 1;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _connection.ReleaseAsync().ConfigureAwait(false);
        }
    }

    // Ticks in decimal: one canonical text per instant, so the scripts compare last runs as strings.
    private static string Ticks(DateTimeOffset? at) => at is { } t ? t.UtcTicks.ToString(CultureInfo.InvariantCulture) : "";

    private static long? Number(RedisValue value) =>
        long.TryParse((string?)value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n) ? n : null;

    private static Dictionary<string, RedisValue> Pairs(RedisResult hash)
    {
        var flat = (RedisValue[])hash!;
        var pairs = new Dictionary<string, RedisValue>(flat.Length / 2, StringComparer.Ordinal);
        for (int i = 0; i + 1 < flat.Length; i += 2)
        {
            pairs[(string)flat[i]!] = flat[i + 1];
        }

        return pairs;
    }

    private Task<RedisResult> EvaluateAsync(string script, RedisKey[] keys, RedisValue[] values, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _connection.RunAsync(
            async () => await (await _connection.DatabaseAsync(_db).ConfigureAwait(false)).ScriptEvaluateAsync(script, keys, values).ConfigureAwait(false),
            s_patience,
            ct);
    }
}
