using System.Diagnostics;
using System.Text.Json;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>
/// States a running task reports (Celery's <c>update_state</c>): the Quickstart's <c>tasks.progress</c> stores
/// PROGRESS with <c>{"current", "total"}</c> at each step, which a client reads while it runs, on SQLite, Redis and RabbitMQ.
/// </summary>
public sealed class TaskStateTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "state");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public void Dispose() => _brokers.Dispose();

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task Progress_ClientReadsEachStepWhileItRuns_ThenTheResult(string broker)
    {
        await using CeleriacApp app = await _brokers.NewAppAsync(broker);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        AsyncResult result = await app.SendTaskAsync("tasks.progress", [5], ct: Ct);

        // Poll as a dashboard would: every step shows up as PROGRESS with its meta, in order.
        var seen = new SortedSet<long>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(20) && !result.Ready)
        {
            await result.RefreshAsync(Ct);
            if (result.State == "PROGRESS")
            {
                JsonElement info = result.Info!.Value;
                Assert.Equal(5, info.GetProperty("total").GetInt64());
                seen.Add(info.GetProperty("current").GetInt64());
                Assert.Null(result.Meta!.DateDone);
            }

            await Task.Delay(50, Ct);
        }

        Assert.Equal(5, await result.GetAsync<long>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(TaskStates.Success, result.State);

        // Each step lasts 0.2 s and polls come every 50 ms: most steps are seen, always starting from the first.
        Assert.True(seen.Count >= 3, $"saw steps {string.Join(",", seen)} of 5");
        Assert.Subset(new SortedSet<long> { 1, 2, 3, 4, 5 }, seen);
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task UpdateState_WithIgnoredResult_StillStoresTheCustomStateButNoResult(string broker)
    {
        await using CeleriacApp app = await _brokers.NewAppAsync(broker);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task("tasks.report", async (TaskContext context) =>
        {
            await context.UpdateStateAsync("CHECKING", new Dictionary<string, string> { ["file"] = "a.csv" }, context.CancellationToken);
            await release.Task.WaitAsync(context.CancellationToken);
            return 1;
        }, new TaskOptions { IgnoreResult = true });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        AsyncResult result = await app.SendTaskAsync("tasks.report", ct: Ct);

        await Poll.UntilAsync(async () => await result.GetStateAsync(Ct) == "CHECKING", TimeSpan.FromSeconds(10));

        Assert.Equal("CHECKING", result.State);
        Assert.Equal("a.csv", result.Info!.Value.GetProperty("file").GetString());
        release.SetResult();

        // The ignored result never replaces it.
        await Task.Delay(500, Ct);
        Assert.Equal("CHECKING", await result.GetStateAsync(Ct));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task IgnoredResult_StoresNoErrorUnlessStoreErrorsEvenIfIgnored(string broker)
    {
        await using CeleriacApp app = await _brokers.NewAppAsync(broker);
        app.Task("tasks.quiet_fail", long () => throw new InvalidOperationException("quiet"), new TaskOptions { IgnoreResult = true });
        app.Task("tasks.loud_fail", long () => throw new InvalidOperationException("loud"), new TaskOptions { IgnoreResult = true, StoreErrorsEvenIfIgnored = true });
        app.Task("tasks.quiet_ok", () => 1L, new TaskOptions { IgnoreResult = true });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        AsyncResult quiet = await app.SendTaskAsync("tasks.quiet_fail", ct: Ct);
        AsyncResult loud = await app.SendTaskAsync("tasks.loud_fail", ct: Ct);
        AsyncResult ok = await app.SendTaskAsync("tasks.quiet_ok", ct: Ct);
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => loud.GetAsync<long>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(("InvalidOperationException", "loud"), (error.ExceptionType, error.RemoteMessage));

        // Once all three ran, nothing of the two ignored ones is stored.
        await Poll.UntilAsync(() => worker.Worker.Processed >= 3, TimeSpan.FromSeconds(10));

        await Task.Delay(300, Ct);
        Assert.Equal(3, worker.Worker.Processed);
        Assert.Equal(TaskStates.Pending, await quiet.GetStateAsync(Ct));
        Assert.Equal(TaskStates.Pending, await ok.GetStateAsync(Ct));
    }
}
