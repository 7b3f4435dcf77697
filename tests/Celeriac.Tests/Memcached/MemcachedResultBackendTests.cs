using System.IO.Compression;
using System.Text;
using Celeriac.Memcached;
using Celeriac.Results;
using Celeriac.Tests.Conformance;

namespace Celeriac.Tests.Memcached;

/// <summary>What the backend leaves on memcached, item by item, as pylibmc would read it.</summary>
public sealed class MemcachedResultBackendTests(MemcachedServerFixture memcached) : IClassFixture<MemcachedServerFixture>, IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private MemcachedResultBackend _backend = null!;

    public ValueTask InitializeAsync()
    {
        _backend = new MemcachedResultBackend(new ResultBackendOptions { Url = new Uri(memcached.Server.Url()) });
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await _backend.DisposeAsync();

    private static TaskResultMeta Success(string id) => new()
    {
        TaskId = id,
        Status = TaskStates.Success,
        Result = "\"h\u00e9\""u8.ToArray(),
        DateDone = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero),
    };

    [Fact]
    public async Task StoreAsync_Document_IsTextFlaggedAsPylibmcStoresAStr()
    {
        string id = Guid.NewGuid().ToString();
        TaskResultMeta meta = Success(id);

        await _backend.StoreAsync(meta, Ct);

        (uint flags, byte[] data) = (await memcached.Server.GetRawAsync("celery-task-meta-" + id, Ct))!.Value;
        Assert.Equal(16u, flags);
        Assert.Equal(meta.Encode(), data);
    }

    [Fact]
    public async Task BeginChordAsync_CounterIsAnIntegerZero_AndTheHeaderASavedGroup()
    {
        string group = Guid.NewGuid().ToString();

        await _backend.BeginChordAsync(group, ["a", "b"], 2, ct: Ct);

        Assert.Equal((4u, "0"), await RawTextAsync("chord-unlock-" + group));
        Assert.Equal((16u, $"{{\"result\":[[\"{group}\",null],[[[\"a\",null],null],[[\"b\",null],null]]]}}"), await RawTextAsync("celery-taskset-meta-" + group));
        Assert.Equal(1, await _backend.IncrementChordCounterAsync(group, Ct));
        Assert.Equal((4u, "1"), await RawTextAsync("chord-unlock-" + group));
    }

    [Fact]
    public async Task IncrementChordCounterAsync_MissingCounter_StartsAtOne()
    {
        string group = Guid.NewGuid().ToString();

        Assert.Equal(1, await _backend.IncrementChordCounterAsync(group, Ct));
        Assert.Equal(2, await _backend.IncrementChordCounterAsync(group, Ct));
        Assert.Equal((4u, "2"), await RawTextAsync("chord-unlock-" + group));
    }

    [Fact]
    public async Task StoreAsync_ExpiryBeyondThirtyDays_KeptAsAUnixTime()
    {
        await using var backend = new MemcachedResultBackend(new ResultBackendOptions { Url = new Uri(memcached.Server.Url()), ResultExpires = TimeSpan.FromDays(40) });
        string id = Guid.NewGuid().ToString();

        await backend.StoreAsync(Success(id), Ct);

        // Sent as seconds, 40 days would be a unix time in 1970: gone at once.
        Assert.NotNull(await backend.GetAsync(id, Ct));
    }

    [Fact]
    public async Task GetAsync_ZlibFlaggedValue_IsInflatedAsPylibmcDoes()
    {
        string id = Guid.NewGuid().ToString();
        byte[] plain = Success(id).Encode();
        using var packed = new MemoryStream();
        using (var z = new ZLibStream(packed, CompressionLevel.Optimal, leaveOpen: true))
        {
            z.Write(plain);
        }

        await SetRawAsync("celery-task-meta-" + id, 16 | 8, packed.ToArray());

        Assert.Equal(plain, (await _backend.GetAsync(id, Ct))!.Encode());
    }

    [Fact]
    public async Task GetAsync_PickledValue_ClearErrorAndTheBackendGoesOn()
    {
        string id = Guid.NewGuid().ToString();
        await SetRawAsync("celery-task-meta-" + id, 1, [0x80, 0x04, 0x4e, 0x2e]);

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => _backend.GetAsync(id, Ct).AsTask());

        Assert.Contains("pickled Python object", e.Message, StringComparison.Ordinal);
        string other = Guid.NewGuid().ToString();
        await _backend.StoreAsync(Success(other), Ct);
        Assert.NotNull(await _backend.GetAsync(other, Ct));
    }

    [Fact]
    public async Task StoreAsync_ResultOverOneMegabyte_ClearErrorAndTheBackendGoesOn()
    {
        string id = Guid.NewGuid().ToString();
        var big = new TaskResultMeta { TaskId = id, Status = TaskStates.Success, Result = Encoding.UTF8.GetBytes("\"" + new string('x', 1100 * 1024) + "\"") };

        var e = await Assert.ThrowsAsync<MemcachedException>(() => _backend.StoreAsync(big, Ct).AsTask());

        Assert.Contains("items are at most 1 MB", e.Message, StringComparison.Ordinal);
        await _backend.StoreAsync(Success(id), Ct);
        Assert.Equal(TaskStates.Success, (await _backend.GetAsync(id, Ct))?.Status);
    }

    private async Task<(uint, string)> RawTextAsync(string key) =>
        (await memcached.Server.GetRawAsync(key, Ct)) is { } raw ? (raw.Flags, Encoding.UTF8.GetString(raw.Data)) : default;

    private async Task SetRawAsync(string key, uint flags, byte[] data)
    {
        byte[] head = Encoding.ASCII.GetBytes($"set {key} {flags} 60 {data.Length}\r\n");
        byte[] reply = await memcached.Server.CommandAsync([.. head, .. data, .. "\r\n"u8], Ct);
        Assert.Equal("STORED\r\n", Encoding.ASCII.GetString(reply));
    }
}
