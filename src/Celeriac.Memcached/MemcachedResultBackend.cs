using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using Celeriac.Results;
using Microsoft.Extensions.Logging;

namespace Celeriac.Memcached;

/// <summary>
/// Celery's cache result backend on memcached (<c>cache+memcached://host:port/</c>, <c>cache+pylibmc://</c>): documents
/// under Celery's keys, stored as pylibmc stores a Python <c>str</c> (flag 16) so that Celery reads them as it reads its
/// own; chords count with <c>incr</c> on <c>chord-unlock-&lt;group&gt;</c>, which the client sets to 0 (as an integer,
/// flag 4) before it sends the header, as Celery does. memcached cannot tell anyone of a write, so waiting on another
/// process's write polls; a write by this backend wakes its own waiters at once.
/// While memcached is away, writes are retried with back-off (for up to <c>memcached_retry_timeout</c>, 5 minutes by
/// default) and reads for up to a minute (at most as long as writes); then a <see cref="MemcachedException"/> says so.
/// A server that has never answered this backend is tried only for <see cref="ResultBackendOptions.ConnectTimeout"/>;
/// then a <see cref="BrokerUnreachableException"/> says so.
/// </summary>
public sealed class MemcachedResultBackend : KeyValueResultBackend
{
    /// <summary>pylibmc's flag of a <c>str</c> (UTF-8 text).</summary>
    internal const uint TextFlag = 16;

    /// <summary>pylibmc's flag of an <c>int</c>.</summary>
    internal const uint IntegerFlag = 4;

    private const uint PickleFlag = 1;
    private const uint ZlibFlag = 8;

    // memcached reads an expiry above 30 days as a unix time.
    private const long MaxRelativeExpiry = 60 * 60 * 24 * 30;

    private readonly MemcachedClient _client;
    private readonly TimeSpan _writePatience;
    private readonly TimeSpan _readPatience;
    private readonly ILogger _logger;
    private readonly string _servers;
    private readonly Lock _outageGate = new();
    private readonly KeyWaiterTable _waiters = new();
    private long _outageStarted;
    private bool _reached;

    /// <summary>
    /// Creates the backend on the servers of <see cref="ResultBackendOptions.Url"/> (it connects on first use). Settings:
    /// <c>memcached_timeout</c> (seconds a command may take, 5 by default) and <c>memcached_retry_timeout</c> (seconds a
    /// write is retried while memcached is away, 300 by default).
    /// </summary>
    public MemcachedResultBackend(ResultBackendOptions options)
        : base(options)
    {
        MemcachedEndpoint endpoint = MemcachedEndpoint.Parse(options.Url);
        TimeSpan timeout = Seconds(options, "memcached_timeout", 5);
        _writePatience = Seconds(options, "memcached_retry_timeout", 300);
        _readPatience = TimeSpan.FromTicks(Math.Min(_writePatience.Ticks, TimeSpan.FromMinutes(1).Ticks));
        _client = new MemcachedClient(endpoint.Servers, timeout);
        _logger = options.LoggerFactory.CreateLogger("Celeriac.Memcached");
        _servers = string.Join(';', endpoint.Servers);
    }

    /// <inheritdoc />
    protected override KeyWaiterTable Waiters => _waiters;

    /// <summary>The client (tests).</summary>
    internal MemcachedClient Client => _client;

    private static TimeSpan Seconds(ResultBackendOptions options, string name, double fallback)
    {
        string? text = options.Setting(name);
        if (text is null)
        {
            return TimeSpan.FromSeconds(fallback);
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && seconds > 0 && seconds < 1e6
            ? TimeSpan.FromSeconds(seconds)
            : throw new CeleriacConfigurationException($"The result backend setting {name}='{text}' is not a positive number of seconds.");
    }

    /// <summary>memcached's <c>exptime</c> for an expiry: seconds up to 30 days, a unix time beyond, 0 for never.</summary>
    internal static long Exptime(TimeSpan? expiry, TimeProvider time)
    {
        if (expiry is not { } ttl)
        {
            return 0;
        }

        if (ttl <= TimeSpan.Zero)
        {
            // A negative exptime expires the item at once; 0 would keep it forever.
            return -1;
        }

        long seconds = (long)Math.Ceiling(ttl.TotalSeconds);
        return seconds <= MaxRelativeExpiry ? seconds : time.GetUtcNow().ToUnixTimeSeconds() + seconds;
    }

    private long Exptime(TimeSpan? expiry) => Exptime(expiry, Options.TimeProvider);

    /// <inheritdoc />
    protected override async ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct)
    {
        (byte[] Value, uint Flags)? got = await RunAsync(() => _client.GetAsync(key, ct), _readPatience, retrySent: true, ct).ConfigureAwait(false);
        return got is { } v ? Decode(key, v.Value, v.Flags) : null;
    }

    /// <summary>What pylibmc would return for a value: text, bytes and integers as they are, zlib inflated, a pickle refused.</summary>
    internal static byte[] Decode(string key, byte[] value, uint flags)
    {
        if ((flags & PickleFlag) != 0)
        {
            throw new InvalidDataException($"{key} holds a pickled Python object (memcached flag {flags}), which Celeriac cannot read: Celery writes its results as JSON text unless result_serializer says otherwise.");
        }

        if ((flags & ZlibFlag) == 0)
        {
            return value;
        }

        using var inflate = new ZLibStream(new MemoryStream(value), CompressionMode.Decompress);
        using var plain = new MemoryStream();
        inflate.CopyTo(plain);
        return plain.ToArray();
    }

    /// <inheritdoc />
    protected override async ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct)
    {
        long exptime = Exptime(expiry);
        try
        {
            // Once begun, a write is seen through: a result must not be lost because a caller gave up.
            await RunAsync(
                async () =>
                {
                    await _client.SetAsync(key, value, TextFlag, exptime, CancellationToken.None).ConfigureAwait(false);
                    return true;
                },
                _writePatience,
                retrySent: true,
                CancellationToken.None).ConfigureAwait(false);
            Wake(key);
        }
        catch (MemcachedException e) when (!e.IsTransient && e.Message.Contains("too large", StringComparison.Ordinal))
        {
            throw new MemcachedException(
                $"memcached refused the {value.Length:N0}-byte value of {key}: its items are at most 1 MB unless it was started with a larger -I (--max-item-size). {e.Message}", e);
        }
    }

    /// <inheritdoc />
    protected override async ValueTask DeleteValueAsync(string key, CancellationToken ct) =>
        await RunAsync(() => _client.DeleteAsync(key, ct), _writePatience, retrySent: true, ct).ConfigureAwait(false);

    /// <summary>
    /// <c>incr</c>; on a missing key (pylibmc's incr fails there) <c>add</c> 1, and if another writer added it first,
    /// <c>incr</c> again. An increment that may have reached the server is not retried: it could count twice.
    /// </summary>
    protected override async ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct)
    {
        long exptime = Exptime(expiry);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            // As Celery's on_chord_part_return, the counter lives as long as the results it counts: touched with each
            // increment, in the same flush (a touch that finds no counter yet is harmless: the add below sets the expiry).
            Task<ulong?> increment = RunAsync(() => _client.IncrementAsync(key, 1, ct), _writePatience, retrySent: false, ct);
            Task<bool> touch = RunAsync(() => _client.TouchAsync(key, exptime, ct), _writePatience, retrySent: true, ct);
            await Task.WhenAll(increment, touch).ConfigureAwait(false);
            ulong? value = await increment.ConfigureAwait(false);
            if (value is { } counted)
            {
                return (long)counted;
            }

            if (await RunAsync(() => _client.AddAsync(key, "1"u8.ToArray(), IntegerFlag, exptime, ct), _writePatience, retrySent: false, ct).ConfigureAwait(false))
            {
                return 1;
            }
        }

        throw new MemcachedException($"The counter {key} on memcached at {_servers} kept vanishing between incr and add.");
    }

    /// <summary>As Celery's <c>CacheBackend._apply_chord_incr</c>: the counter is set to 0 and the header saved as a group.</summary>
    public override async ValueTask BeginChordAsync(string groupId, IReadOnlyList<string> headerIds, int size, ReadOnlyMemory<byte> nestedHeader = default, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(groupId);
        long exptime = Exptime(Options.ResultExpires);
        string key = ChordKeyPrefix + groupId;
        await RunAsync(
            async () =>
            {
                await _client.SetAsync(key, "0"u8.ToArray(), IntegerFlag, exptime, ct).ConfigureAwait(false);
                return true;
            },
            _writePatience,
            retrySent: true,
            ct).ConfigureAwait(false);
        await base.BeginChordAsync(groupId, headerIds, size, nestedHeader, ct).ConfigureAwait(false);
    }

    private async Task<T> RunAsync<T>(Func<Task<T>> operation, TimeSpan patience, bool retrySent, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        TimeSpan delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                T result = await operation().ConfigureAwait(false);
                Volatile.Write(ref _reached, true);
                MarkUp();
                return result;
            }
            catch (MemcachedException e) when (e.IsTransient && (retrySent || !e.WasSent) && !ct.IsCancellationRequested)
            {
                // A server that has never answered is more likely a wrong address or one not started than a restart:
                // the caller hears so within the connect timeout rather than after the patience meant for outages (a
                // shorter patience, which the caller chose, still ends first and says what it always said).
                bool neverReached = !Volatile.Read(ref _reached) && Options.ConnectTimeout < patience;
                TimeSpan limit = neverReached ? Options.ConnectTimeout : patience;
                MarkDown(e, neverReached);
                TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
                if (elapsed >= limit)
                {
                    throw neverReached
                        ? new BrokerUnreachableException(ToString(), Options.ConnectTimeout, e)
                        : new MemcachedException($"memcached at {_servers} has been unreachable for {elapsed.TotalSeconds:0.#} s: {e.Message}", e);
                }

                // The last try falls at the limit, so a call never gives up before it.
                await Task.Delay(delay < limit - elapsed ? delay : limit - elapsed, ct).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
            catch (MemcachedException e) when (!e.IsTransient)
            {
                // A refusal is an answer: the server is there.
                Volatile.Write(ref _reached, true);
                throw;
            }
        }
    }

    private void MarkDown(Exception e, bool neverReached)
    {
        lock (_outageGate)
        {
            if (_outageStarted != 0)
            {
                return;
            }

            _outageStarted = Stopwatch.GetTimestamp();
        }

        // A server never reached is given up on after the connect timeout, one that went away is waited for: say which.
        if (neverReached)
        {
            Log.NeverReached(_logger, _servers, e.Message, Options.ConnectTimeout.TotalSeconds);
        }
        else
        {
            Log.Unreachable(_logger, _servers, e.Message);
        }
    }

    private void MarkUp()
    {
        if (Volatile.Read(ref _outageStarted) == 0)
        {
            return;
        }

        long started;
        lock (_outageGate)
        {
            started = _outageStarted;
            _outageStarted = 0;
        }

        if (started != 0)
        {
            Log.Reachable(_logger, _servers, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override string ToString() => "cache+memcached://" + _servers + "/";
}
