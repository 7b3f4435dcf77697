using System.Globalization;
using System.Text;

namespace Celeriac.Memcached;

/// <summary>
/// A small memcached client over the text protocol: get, set, add, delete, incr, touch. Keys go to one of several
/// servers as libmemcached (pylibmc's library) sends them by default: its one-at-a-time hash of the key, modulo the
/// number of servers, in the order given, so that Python and .NET clients of the same server list meet on the same keys.
/// </summary>
internal sealed class MemcachedClient : IAsyncDisposable
{
    /// <summary>memcached's longest key.</summary>
    public const int MaxKeyLength = 250;

    private readonly MemcachedConnection[] _connections;

    public MemcachedClient(IReadOnlyList<MemcachedServerAddress> servers, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(servers);
        _connections = [.. servers.Select(s => new MemcachedConnection(s, timeout))];
    }

    /// <summary>The connections, one per server, in the URL's order.</summary>
    internal IReadOnlyList<MemcachedConnection> Connections => _connections;

    /// <summary>The value and flags under a key, or <see langword="null"/>.</summary>
    public async Task<(byte[] Value, uint Flags)?> GetAsync(string key, CancellationToken ct)
    {
        Reply r = await For(key).SendAsync(Line("get", key), ReplyKind.Value, ct).ConfigureAwait(false);
        return r.Data is { } data ? (data, r.Flags) : null;
    }

    /// <summary>Stores a value (<c>set</c>).</summary>
    public async Task SetAsync(string key, ReadOnlyMemory<byte> value, uint flags, long exptime, CancellationToken ct)
    {
        Reply r = await For(key).SendAsync(Storage("set", key, value, flags, exptime), ReplyKind.Status, ct).ConfigureAwait(false);
        Expect(r, "set", key, "STORED");
    }

    /// <summary>Stores a value only if the key is missing (<c>add</c>); false when it was there.</summary>
    public async Task<bool> AddAsync(string key, ReadOnlyMemory<byte> value, uint flags, long exptime, CancellationToken ct)
    {
        Reply r = await For(key).SendAsync(Storage("add", key, value, flags, exptime), ReplyKind.Status, ct).ConfigureAwait(false);
        return Expect(r, "add", key, "STORED", "NOT_STORED") == "STORED";
    }

    /// <summary>Deletes a key; false when it was missing.</summary>
    public async Task<bool> DeleteAsync(string key, CancellationToken ct)
    {
        Reply r = await For(key).SendAsync(Line("delete", key), ReplyKind.Status, ct).ConfigureAwait(false);
        return Expect(r, "delete", key, "DELETED", "NOT_FOUND") == "DELETED";
    }

    /// <summary>Adds <paramref name="delta"/> to a decimal value and returns the sum; <see langword="null"/> when the key is missing.</summary>
    public async Task<ulong?> IncrementAsync(string key, ulong delta, CancellationToken ct)
    {
        Reply r = await For(key).SendAsync(Line("incr", key, delta.ToString(CultureInfo.InvariantCulture)), ReplyKind.Number, ct).ConfigureAwait(false);
        return Expect(r, "incr", key, "NUMBER", "NOT_FOUND") == "NUMBER" ? r.Number : null;
    }

    /// <summary>Sets a key's expiry; false when it was missing.</summary>
    public async Task<bool> TouchAsync(string key, long exptime, CancellationToken ct)
    {
        Reply r = await For(key).SendAsync(Line("touch", key, exptime.ToString(CultureInfo.InvariantCulture)), ReplyKind.Status, ct).ConfigureAwait(false);
        return Expect(r, "touch", key, "TOUCHED", "NOT_FOUND") == "TOUCHED";
    }

    /// <summary>The server a key lives on: libmemcached's default distribution (modula over its one-at-a-time hash).</summary>
    internal int ServerIndex(string key) => _connections.Length == 1 ? 0 : (int)(OneAtATime(Encoding.UTF8.GetBytes(key)) % (uint)_connections.Length);

    /// <summary>libmemcached's <c>hashkit_one_at_a_time</c>, which reads each byte as a signed char.</summary>
    internal static uint OneAtATime(ReadOnlySpan<byte> key)
    {
        uint value = 0;
        foreach (byte b in key)
        {
            value += unchecked((uint)(sbyte)b);
            value += value << 10;
            value ^= value >> 6;
        }

        value += value << 3;
        value ^= value >> 11;
        value += value << 15;
        return value;
    }

    /// <summary>Throws a clear error when memcached's text protocol cannot carry the key.</summary>
    internal static void CheckKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        int bytes = Encoding.UTF8.GetByteCount(key);
        if (bytes is 0 or > MaxKeyLength)
        {
            throw new ArgumentException($"memcached keys are 1 to {MaxKeyLength} bytes; '{Shorten(key)}' is {bytes}.", nameof(key));
        }

        foreach (char c in key)
        {
            if (c <= ' ' || c == '\u007f')
            {
                throw new ArgumentException($"memcached keys have no spaces or control characters: '{Shorten(key)}'.", nameof(key));
            }
        }
    }

    private static string Shorten(string key) => key.Length > 80 ? key[..80] + "..." : key;

    private MemcachedConnection For(string key)
    {
        CheckKey(key);
        return _connections[ServerIndex(key)];
    }

    private static string Expect(Reply r, string command, string key, params string[] expected) =>
        Array.IndexOf(expected, r.Status) >= 0
            ? r.Status
            : throw new MemcachedException($"memcached answered '{r.Status}' to {command} {key}", transient: false, sent: true);

    private static byte[] Line(string command, string key, string? argument = null) =>
        Encoding.UTF8.GetBytes(argument is null ? $"{command} {key}\r\n" : $"{command} {key} {argument}\r\n");

    private static byte[] Storage(string command, string key, ReadOnlyMemory<byte> value, uint flags, long exptime)
    {
        byte[] head = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{command} {key} {flags} {exptime} {value.Length}\r\n"));
        byte[] all = new byte[head.Length + value.Length + 2];
        head.CopyTo(all, 0);
        value.Span.CopyTo(all.AsSpan(head.Length));
        all[^2] = (byte)'\r';
        all[^1] = (byte)'\n';
        return all;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (MemcachedConnection c in _connections)
        {
            await c.DisposeAsync().ConfigureAwait(false);
        }
    }
}
