using System.Diagnostics;
using System.Text;
using Celeriac.Memcached;
using Celeriac.Results;
using Celeriac.TestServers;
using Celeriac.Tests.Conformance;

namespace Celeriac.Tests.Memcached;

/// <summary>Stops and starts its own server: a class of its own, so that no other test sees the outage.</summary>
public sealed class MemcachedRestartTests(MemcachedServerFixture memcached) : IClassFixture<MemcachedServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private MemcachedResultBackend Backend(string query = "") => new(new ResultBackendOptions { Url = new Uri(memcached.Server.Url() + query) });

    private static TaskResultMeta Success(string id) => new()
    {
        TaskId = id,
        Status = TaskStates.Success,
        Result = "42"u8.ToArray(),
        DateDone = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero),
    };

    [Fact]
    public async Task ServerRestarts_StoreMadeWhileItIsAway_LandsWhenItIsBack()
    {
        await using MemcachedResultBackend backend = Backend();
        await backend.StoreAsync(Success("before"), Ct);

        await memcached.Server.StopAsync();
        Task store = backend.StoreAsync(Success("during"), Ct).AsTask();
        await Task.Delay(500, Ct);
        Assert.False(store.IsCompleted);
        await memcached.Server.StartAgainAsync(Ct);
        await store.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal(TaskStates.Success, (await backend.GetAsync("during", Ct))?.Status);
        Assert.Null(await backend.GetAsync("before", Ct)); // memcached keeps nothing over a restart
    }

    [Fact]
    public async Task ServerGone_StoreFailsClearlyAfterItsPatience()
    {
        await using var backend = new MemcachedResultBackend(new ResultBackendOptions { Url = new Uri($"cache+memcached://127.0.0.1:{FreePort.Next()}/?memcached_retry_timeout=1") });
        var watch = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<MemcachedException>(() => backend.StoreAsync(Success("x"), Ct).AsTask());

        Assert.Contains("has been unreachable for", e.Message, StringComparison.Ordinal);
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(5));
        await Assert.ThrowsAsync<MemcachedException>(() => backend.GetAsync("x", Ct).AsTask());
    }

    [Fact]
    public async Task ServerKilledAndRestarted_NextRead_Reconnects()
    {
        await using MemcachedResultBackend backend = Backend();
        await backend.StoreAsync(Success("a"), Ct);
        Assert.NotNull(await backend.GetAsync("a", Ct));

        memcached.Server.Kill();
        await memcached.Server.StartAgainAsync(Ct);
        await backend.StoreAsync(Success("b"), Ct);

        Assert.Equal("42", Encoding.UTF8.GetString((await backend.GetAsync("b", Ct))!.Result.Span));
    }
}
