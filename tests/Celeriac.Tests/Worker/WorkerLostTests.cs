using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>
/// A cold shutdown cuts a running task off (Celery's <c>WorkerLostError</c>): it is stored as FAILURE and its message
/// acked, unless a late-acked task has <c>reject_on_worker_lost</c>, which gives the message back to run again.
/// </summary>
public sealed class WorkerLostTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "worker-lost");
    private int _runs;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, bool, bool?, bool?, bool> Cases()
    {
        var data = new TheoryData<string, bool, bool?, bool?, bool>();
        foreach (string broker in TestBrokers.Names)
        {
            // broker, acks late, the app's reject_on_worker_lost, the task's, whether the message goes back
            data.Add(broker, false, null, null, false);
            data.Add(broker, true, null, null, false);
            data.Add(broker, true, true, null, true);
            data.Add(broker, true, false, true, true);
            data.Add(broker, true, true, false, false);
            data.Add(broker, false, true, null, false); // an early-acked message is gone already
        }

        return data;
    }

    public void Dispose() => _brokers.Dispose();

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task ColdStop_CutsOffARunningTask_FailsItOrGivesItBack(string broker, bool acksLate, bool? appRejects, bool? taskRejects, bool returned)
    {
        string url = await _brokers.UrlAsync(broker);
        string queue = "lost-" + Guid.NewGuid().ToString("N")[..8];
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        AsyncResult result;
        CeleriacApp first = await NewAppAsync(broker, url, queue, acksLate, appRejects, taskRejects, started);
        await using (RunningWorker worker = await RunningWorker.StartAsync(first))
        {
            result = await first.SendTaskAsync("t.stuck", ct: Ct);
            await started.Task.WaitAsync(s_wait, Ct);
            await worker.AbortSource.CancelAsync();
            await worker.Run.WaitAsync(s_wait, Ct);

            // A reject reaches RabbitMQ without a reply, so the count may lag a moment behind it.
            long expected = returned ? 1 : 0;
            await Poll.UntilAsync(async () => await first.Transport.GetQueueLengthAsync(queue, Ct) == expected, TimeSpan.FromSeconds(5));

            Assert.Equal(expected, await first.Transport.GetQueueLengthAsync(queue, Ct));
            if (returned)
            {
                Assert.Equal(TaskStates.Pending, await result.GetStateAsync(Ct));
            }
            else
            {
                TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<int>(s_wait, Ct));
                Assert.Equal(("WorkerLostError", "billiard.exceptions"), (error.ExceptionType, error.ExceptionModule));
                Assert.StartsWith("Worker exited prematurely", error.RemoteMessage, StringComparison.Ordinal);
            }
        }

        // A new worker: a returned task runs again (its second run finishes); a failed one never runs again.
        CeleriacApp second = await NewAppAsync(broker, url, queue, acksLate, appRejects, taskRejects, started);
        await using (RunningWorker again = await RunningWorker.StartAsync(second))
        {
            // (Counted, not read from the result: an rpc:// result goes to the client that sent the task, the first app.)
            await Poll.UntilAsync(() => !returned || Volatile.Read(ref _runs) >= 2, s_wait);

            await Task.Delay(500, Ct);
        }

        Assert.Equal(returned ? 2 : 1, Volatile.Read(ref _runs));
    }

    public static TheoryData<string, bool, bool, bool> Abandoned()
    {
        var data = new TheoryData<string, bool, bool, bool>();
        foreach (string broker in TestBrokers.Names)
        {
            // broker, acks late, reject_on_worker_lost, whether the message goes back
            data.Add(broker, false, false, false);
            data.Add(broker, true, false, false);
            data.Add(broker, true, true, true);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Abandoned))]
    public async Task ColdStop_TaskIgnoresItsToken_AbandonedAfterTheGrace_SettledAsLost_ItsLateOutcomeDiscarded(string broker, bool acksLate, bool rejects, bool returned)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var unblock = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        CeleriacApp app = await _brokers.NewAppAsync(broker, o =>
        {
            o.Concurrency = 1;
            o.AcksLate = acksLate;
            o.RejectOnWorkerLost = rejects;
            o.ColdShutdownGrace = TimeSpan.FromMilliseconds(500);
        });
        app.Task("t.deaf", async () =>
        {
            started.SetResult();
            await unblock.Task; // never looks at a token
            return "too late";
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        AsyncResult result = await app.SendTaskAsync("t.deaf", ct: Ct);
        await started.Task.WaitAsync(s_wait, Ct);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await worker.AbortSource.CancelAsync();
        await worker.Run.WaitAsync(s_wait, Ct);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5)); // the grace, then it stops

        // The abandoned code ends after all: what it returns is discarded.
        unblock.SetResult();
        await Task.Delay(300, Ct);
        long expected = returned ? 1 : 0;
        await Poll.UntilAsync(async () => await app.Transport.GetQueueLengthAsync(app.Options.DefaultQueue, Ct) == expected, s_wait);

        Assert.Equal(expected, await app.Transport.GetQueueLengthAsync(app.Options.DefaultQueue, Ct));
        if (returned)
        {
            Assert.Equal(TaskStates.Pending, await result.GetStateAsync(Ct));
        }
        else
        {
            TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<string>(s_wait, Ct));
            Assert.Equal("WorkerLostError", error.ExceptionType);
        }
    }

    private async Task<CeleriacApp> NewAppAsync(string broker, string url, string queue, bool acksLate, bool? appRejects, bool? taskRejects, TaskCompletionSource started)
    {
        CeleriacApp app = await _brokers.NewAppAsync(broker, o =>
        {
            o.BrokerUrl = url;
            o.DefaultQueue = queue;
            o.Concurrency = 1;
            o.AcksLate = acksLate;
            o.RejectOnWorkerLost = appRejects ?? false;
        });
        app.Task("t.stuck", async (CancellationToken ct) =>
        {
            int run = Interlocked.Increment(ref _runs);
            if (run == 1)
            {
                // The first run never ends by itself: only the cold shutdown's cancellation stops it.
                started.SetResult();
                await Task.Delay(Timeout.Infinite, ct);
            }

            return run;
        }, new TaskOptions { RejectOnWorkerLost = taskRejects });
        return app;
    }
}
