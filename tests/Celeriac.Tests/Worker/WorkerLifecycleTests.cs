using System.Diagnostics;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>Unknown tasks, expiry, ETA, ack timing and shutdown, on a real worker and the in-process broker.</summary>
public sealed class WorkerLifecycleTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Worker_UnknownTask_FailureNotRegistered()
    {
        CeleriacApp app = RunningWorker.NewApp();
        await using RunningWorker w = await RunningWorker.StartAsync(app);

        AsyncResult result = await app.SendTaskAsync("nobody.has.this", [1], ct: Ct);
        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<int>(s_wait, Ct));

        Assert.Equal("NotRegistered", error.ExceptionType);
        Assert.Contains("nobody.has.this", error.RemoteMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_ExpiresInThePast_RevokedWithoutRunning()
    {
        int runs = 0;
        CeleriacApp app = RunningWorker.NewApp();
        app.Task("t.count", () => Interlocked.Increment(ref runs));
        await using RunningWorker w = await RunningWorker.StartAsync(app);

        AsyncResult result = await app.SendTaskAsync("t.count", options: new ApplyOptions { Expires = app.Options.TimeProvider.GetUtcNow().AddMinutes(-1) }, ct: Ct);
        TaskResultMeta meta = await result.WaitAsync(s_wait, Ct);

        Assert.Equal(TaskStates.Revoked, meta.Status);
        Assert.Equal("TaskRevokedError", meta.Exception!.Type);
        Assert.Equal(0, runs);
    }

    [Fact]
    public async Task Worker_CountdownInTheFuture_RunsOnlyAfterIt()
    {
        long ranAt = 0;
        CeleriacApp app = RunningWorker.NewApp();
        app.Task("t.stamp", () => Interlocked.Exchange(ref ranAt, Stopwatch.GetTimestamp()));
        await using RunningWorker w = await RunningWorker.StartAsync(app);
        long sent = Stopwatch.GetTimestamp();

        AsyncResult result = await app.SendTaskAsync("t.stamp", options: new ApplyOptions { Countdown = TimeSpan.FromMilliseconds(300) }, ct: Ct);
        await Task.Delay(100, Ct);
        Assert.Equal(0, Interlocked.Read(ref ranAt));
        await result.WaitAsync(s_wait, Ct);

        Assert.Equal(TaskStates.Success, result.State);
        Assert.True(Stopwatch.GetElapsedTime(sent, Interlocked.Read(ref ranAt)) >= TimeSpan.FromMilliseconds(290));
    }

    [Fact]
    public async Task WarmStop_SlowTaskRunning_FinishesStoresResultAndReturnsPrefetched()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int runs = 0;
        CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.Concurrency = 1;
            o.PrefetchMultiplier = 4;
        });
        app.Task("t.slow", async () =>
        {
            Interlocked.Increment(ref runs);
            started.TrySetResult();
            await release.Task;
            return "done";
        });
        RunningWorker w = await RunningWorker.StartAsync(app);
        try
        {
            AsyncResult first = await app.SendTaskAsync("t.slow", ct: Ct);
            await started.Task.WaitAsync(s_wait, Ct);
            for (int i = 0; i < 3; i++)
            {
                await app.SendTaskAsync("t.slow", ct: Ct);
            }

            Assert.True(await Poll.UntilAsync(async () => await app.Transport.GetQueueLengthAsync("celery", Ct) == 0, s_wait), "the rest prefetched");
            await w.StopSource.CancelAsync();
            await Task.Delay(50, Ct);
            Assert.False(w.Run.IsCompleted, "warm shutdown waits for the running task");
            release.SetResult();
            await w.Run.WaitAsync(s_wait, Ct);

            Assert.Equal("done", await first.GetAsync<string>(s_wait, Ct));
            Assert.Equal(1, runs);
            Assert.Equal(3, await app.Transport.GetQueueLengthAsync("celery", Ct));
        }
        finally
        {
            await w.DisposeAsync();
        }
    }
}
