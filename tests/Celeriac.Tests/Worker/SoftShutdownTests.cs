using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Worker;

/// <summary>
/// Soft shutdown (Celery 5.5's <c>worker_soft_shutdown_timeout</c>): a warm stop gives running tasks that long, then the
/// cold stop begins and a late-acked task cut off goes back to the queue, so nothing finished runs twice and nothing is lost.
/// </summary>
public sealed class SoftShutdownTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private const int SoftShutdownStarted = 83;
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "soft-shutdown");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public void Dispose() => _brokers.Dispose();

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task WarmStop_ShortTaskFinishesInTheTimeout_LongLateAckedTaskGoesBackAndRunsOnceOnAnotherWorker(string broker)
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-04T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        string? shared = _brokers.SharedResultBackend(broker);
        var logs = new CollectingLoggerFactory();
        CeleriacApp first = await _brokers.NewAppAsync(broker, o =>
        {
            o.AcksLate = true;
            o.SoftShutdownTimeout = TimeSpan.FromSeconds(5);
            o.TimeProvider = time;
            o.ResultBackend = shared;
            o.LoggerFactory = logs;
        });
        var shortGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var shortStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var longStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var longCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        first.Task("t.short", async () =>
        {
            shortStarted.SetResult();
            await shortGate.Task; // the "2 s" task: it finishes when the test says so
            return "done";
        });
        first.Task("t.long", async (CancellationToken ct) =>
        {
            longStarted.SetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ct); // the "20 s" task: longer than the timeout
            }
            catch (OperationCanceledException)
            {
                longCancelled.SetResult();
                throw;
            }

            return "first worker";
        });

        AsyncResult shortResult;
        AsyncResult longResult;
        RunningWorker worker = await RunningWorker.StartAsync(first);
        await using (worker)
        {
            shortResult = await first.SendTaskAsync("t.short", ct: Ct);
            longResult = await first.SendTaskAsync("t.long", ct: Ct);
            await Task.WhenAll(shortStarted.Task, longStarted.Task).WaitAsync(s_wait, Ct);

            await worker.StopSource.CancelAsync();
            Assert.True(await Poll.UntilAsync(() => logs.Count(SoftShutdownStarted) == 1, s_wait)); // its timer runs

            // Within the timeout nothing is cut off, and the short task finishes and its result is stored.
            time.Advance(TimeSpan.FromSeconds(4.9));
            shortGate.SetResult();
            Assert.Equal("done", await shortResult.GetAsync<string>(s_wait, Ct));
            Assert.False(longCancelled.Task.IsCompleted);
            Assert.False(worker.Run.IsCompleted);

            // Past it, the cold stop begins: the long task's token is cancelled and its message goes back.
            time.Advance(TimeSpan.FromSeconds(0.2));
            await longCancelled.Task.WaitAsync(s_wait, Ct);
            await worker.Run.WaitAsync(s_wait, Ct);
        }

        string queue = first.Options.DefaultQueue;
        string url = first.Options.BrokerUrl;
        await using CeleriacApp second = await _brokers.NewAppAsync(broker, o =>
        {
            o.BrokerUrl = url;
            o.DefaultQueue = queue;
            o.ResultBackend = shared;
        });
        int runs = 0;
        second.Task("t.long", () =>
        {
            Interlocked.Increment(ref runs);
            return "second worker";
        });
        await using (RunningWorker again = await RunningWorker.StartAsync(second))
        {
            AsyncResult read = second.AsyncResult(longResult.Id);
            if (broker == "rabbitmq")
            {
                Assert.True(await Poll.UntilAsync(() => Volatile.Read(ref runs) == 1, s_wait));
            }
            else
            {
                Assert.Equal("second worker", await read.GetAsync<string>(s_wait, Ct));
            }

            Assert.True(await Poll.UntilAsync(() => again.Worker.Processed == 1, s_wait));

            // Read while the app is alive: disposing the worker disposes its app, and a disposed app no longer reconnects.
            Assert.Equal(0, await second.Transport.GetQueueLengthAsync(queue, Ct));
        }

        Assert.Equal(1, Volatile.Read(ref runs));
    }

    [Fact]
    public async Task WarmStop_WithoutSoftShutdownTimeout_WaitsForRunningTasks()
    {
        var time = new FakeTimeProvider();
        CeleriacApp app = RunningWorker.NewApp(o => o.TimeProvider = time);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task("t.wait", async (CancellationToken ct) =>
        {
            started.SetResult();
            await gate.Task.WaitAsync(ct);
            return 1;
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        AsyncResult result = await app.SendTaskAsync("t.wait", ct: Ct);
        await started.Task.WaitAsync(s_wait, Ct);

        await worker.StopSource.CancelAsync();
        time.Advance(TimeSpan.FromHours(1));
        Assert.False(worker.Run.IsCompleted);

        gate.SetResult();
        Assert.Equal(1, await result.GetAsync<int>(s_wait, Ct));
        await worker.Run.WaitAsync(s_wait, Ct);
    }
}
