using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Celeriac.Memcached;
using Celeriac.Tests.Conformance;

namespace Celeriac.Tests.Memcached;

public sealed class MemcachedClientTests(MemcachedServerFixture memcached) : IClassFixture<MemcachedServerFixture>, IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly string _prefix = "client-test-" + Guid.NewGuid().ToString("N") + "-";

    private MemcachedClient _client = null!;

    public ValueTask InitializeAsync()
    {
        _client = new MemcachedClient([new MemcachedServerAddress("127.0.0.1", memcached.Server.Port)], TimeSpan.FromSeconds(5));
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await _client.DisposeAsync();

    [Fact]
    public async Task Commands_EachReply_AsMemcachedGivesIt()
    {
        string key = _prefix + "k";

        Assert.Null(await _client.GetAsync(key, Ct));
        Assert.True(await _client.AddAsync(key, "v1"u8.ToArray(), 16, 60, Ct));
        Assert.False(await _client.AddAsync(key, "v2"u8.ToArray(), 16, 60, Ct));
        await _client.SetAsync(key, "line\r\nEND\r\n"u8.ToArray(), 16, 60, Ct);
        (byte[] value, uint flags) = (await _client.GetAsync(key, Ct))!.Value;
        Assert.Equal("line\r\nEND\r\n", Encoding.UTF8.GetString(value));
        Assert.Equal(16u, flags);
        Assert.True(await _client.TouchAsync(key, 120, Ct));
        Assert.True(await _client.DeleteAsync(key, Ct));
        Assert.False(await _client.DeleteAsync(key, Ct));
        Assert.False(await _client.TouchAsync(key, 120, Ct));

        Assert.Null(await _client.IncrementAsync(key, 1, Ct));
        await _client.SetAsync(key, "41"u8.ToArray(), 4, 60, Ct);
        Assert.Equal(42ul, await _client.IncrementAsync(key, 1, Ct));
        Assert.Equal((4u, "42"), (await memcached.Server.GetRawAsync(key, Ct)) is { } raw ? (raw.Flags, Encoding.ASCII.GetString(raw.Data)) : default);
    }

    [Fact]
    public async Task Pipelining_TwoThousandConcurrentCommandsOnOneConnection_EachGetsItsOwnReply()
    {
        await _client.SetAsync(_prefix + "warm", "x"u8.ToArray(), 0, 60, Ct);
        long connectionsBefore = await memcached.Server.StatAsync("total_connections", Ct);

        await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => _client.SetAsync(_prefix + i, Encoding.UTF8.GetBytes(new string('v', i % 300) + i), 16, 60, Ct)));
        (byte[] Value, uint Flags)?[] got = await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => _client.GetAsync(_prefix + i, Ct)));

        Assert.Equal(Enumerable.Range(0, 1000).Select(i => new string('v', i % 300) + i), got.Select(g => Encoding.UTF8.GetString(g!.Value.Value)));
        // Only the stats connection itself was opened meanwhile: the 2000 commands shared the client's one connection.
        Assert.Equal(connectionsBefore + 1, await memcached.Server.StatAsync("total_connections", Ct));
    }

    [Fact]
    public async Task Set_ValueOverOneMegabyte_RefusedClearlyAndTheConnectionGoesOn()
    {
        string key = _prefix + "big";

        var e = await Assert.ThrowsAsync<MemcachedException>(() => _client.SetAsync(key, new byte[(1024 * 1024) + 1], 16, 60, Ct));

        Assert.False(e.IsTransient);
        Assert.Contains("too large", e.Message, StringComparison.Ordinal);
        await _client.SetAsync(key, "small"u8.ToArray(), 16, 60, Ct);
        Assert.Equal("small", Encoding.UTF8.GetString((await _client.GetAsync(key, Ct))!.Value.Value));
    }

    [Fact]
    public async Task Value_OfHalfAMegabyte_RoundTrips()
    {
        byte[] value = [.. Enumerable.Range(0, 512 * 1024).Select(i => (byte)(i % 251))];

        await _client.SetAsync(_prefix + "half", value, 0, 60, Ct);

        Assert.Equal(value, (await _client.GetAsync(_prefix + "half", Ct))!.Value.Value);
    }

    [Fact]
    public async Task BrokenConnection_NextCommand_Reconnects()
    {
        await _client.SetAsync(_prefix + "a", "1"u8.ToArray(), 0, 60, Ct);

        _client.Connections[0].Break();

        Assert.Equal("1", Encoding.UTF8.GetString((await _client.GetAsync(_prefix + "a", Ct))!.Value.Value));
    }

    [Fact]
    public async Task NothingListening_FailsFastAsTransient()
    {
        await using var client = new MemcachedClient([new MemcachedServerAddress("127.0.0.1", TestServers.FreePort.Next())], TimeSpan.FromSeconds(5));
        var watch = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<MemcachedException>(() => client.GetAsync("k", Ct));

        Assert.True(e.IsTransient);
        Assert.Contains("unreachable", e.Message, StringComparison.Ordinal);
        Assert.InRange(watch.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(4));
    }

    [Fact]
    public async Task SilentServer_CommandTimesOut_AndTheNextCommandConnectsAgain()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        int port = ((IPEndPoint)silent.LocalEndpoint).Port;
        await using var client = new MemcachedClient([new MemcachedServerAddress("127.0.0.1", port)], TimeSpan.FromMilliseconds(300));
        var watch = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<MemcachedException>(() => client.GetAsync("k", Ct));

        Assert.True(e.IsTransient);
        Assert.Contains("did not answer within 0.3 s", e.Message, StringComparison.Ordinal);
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(4));
        using TcpClient first = await silent.AcceptTcpClientAsync(Ct);
        await Assert.ThrowsAsync<MemcachedException>(() => client.GetAsync("k", Ct));
        using TcpClient second = await silent.AcceptTcpClientAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(5), Ct);
        Assert.NotNull(second);
    }
}
