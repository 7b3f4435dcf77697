using System.Collections.Concurrent;
using System.Diagnostics;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Worker;

/// <summary>The in-process pools (<c>-P threads</c>, <c>solo</c>, <c>async</c>), autoscale and the pool API, on real brokers.</summary>
public sealed class PoolTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(20);
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "pools");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public void Dispose() => _brokers.Dispose();

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task Threads_EightBlockingTasks_RunTogetherWhileAddKeepsFlowing(string broker)
    {
        CeleriacApp app = await _brokers.NewAppAsync(broker, o =>
        {
            o.Pool = "threads";
            o.Concurrency = 8;
        });
        var finished = new ConcurrentBag<TimeSpan>();
        var clock = Stopwatch.StartNew();
        app.Task("t.block", () =>
        {
            Thread.Sleep(1000); // blocks its thread, as synchronous I/O does
            finished.Add(clock.Elapsed);
            return Environment.CurrentManagedThreadId;
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        Assert.Equal(("threads", 8), (worker.Worker.Pool.Name, worker.Worker.Concurrency));

        clock.Restart();
        var blocks = new List<AsyncResult>();
        for (int i = 0; i < 8; i++)
        {
            blocks.Add(await app.SendTaskAsync("t.block", ct: Ct));
        }

        var adds = new List<AsyncResult>();
        for (int i = 0; i < 100; i++)
        {
            adds.Add(await app.SendTaskAsync("tasks.add", [i, 1], ct: Ct));
        }

        var threads = new HashSet<int>();
        foreach (AsyncResult b in blocks)
        {
            threads.Add(await b.GetAsync<int>(s_wait, Ct));
        }

        for (int i = 0; i < adds.Count; i++)
        {
            Assert.Equal(i + 1, await adds[i].GetAsync<int>(s_wait, Ct));
        }

        TimeSpan addsDone = clock.Elapsed;
        Assert.Equal(8, finished.Count);
        Assert.True(finished.Max() - finished.Min() < TimeSpan.FromSeconds(2), $"blocks finished {finished.Min()} to {finished.Max()}");
        Assert.True(finished.Max() < TimeSpan.FromSeconds(4), $"the last block finished at {finished.Max()}: they did not run together");
        Assert.Equal(8, threads.Count); // a dedicated thread each
        Assert.True(addsDone < TimeSpan.FromSeconds(6), $"100 adds took until {addsDone}");
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task Solo_RunsOneTaskAtATime_WhateverTheConcurrency(string broker)
    {
        CeleriacApp app = await _brokers.NewAppAsync(broker, o =>
        {
            o.Pool = "solo";
            o.Concurrency = 4;
        });
        int running = 0;
        int most = 0;
        app.Task("t.one", async (int i) =>
        {
            int now = Interlocked.Increment(ref running);
            InterlockedMax(ref most, now);
            await Task.Delay(20);
            Interlocked.Decrement(ref running);
            return i;
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        Assert.Equal(("solo", 1), (worker.Worker.Pool.Name, worker.Worker.Concurrency));

        var results = new List<AsyncResult>();
        for (int i = 0; i < 20; i++)
        {
            results.Add(await app.SendTaskAsync("t.one", [i], ct: Ct));
        }

        for (int i = 0; i < results.Count; i++)
        {
            Assert.Equal(i, await results[i].GetAsync<int>(s_wait, Ct));
        }

        Assert.Equal(1, Volatile.Read(ref most));
    }

    [Theory]
    [InlineData("eventlet")]
    [InlineData("gevent")]
    public async Task GreenPoolNames_RunAsAsync(string pool)
    {
        CeleriacApp app = RunningWorker.NewApp(o => o.Pool = pool);
        app.Task("t.add", (int x, int y) => x + y);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        Assert.Equal("async", worker.Worker.Pool.Name);
        Assert.Equal(5, await (await app.SendTaskAsync("t.add", [2, 3], ct: Ct)).GetAsync<int>(s_wait, Ct));
    }

    [Fact]
    public void UnknownPool_IsAConfigurationError()
    {
        CeleriacConfigurationException error = Assert.Throws<CeleriacConfigurationException>(() => new Celeriac.Worker.CeleriacWorker(RunningWorker.NewApp(o => o.Pool = "gevnet")));
        Assert.Contains("gevnet", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("async")]
    [InlineData("threads")]
    public async Task GrowAndShrink_ChangeHowManyTasksRunAtOnce(string pool)
    {
        CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.Pool = pool;
            o.Concurrency = 1;
        });
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int running = 0;
        app.Task("t.wait", async () =>
        {
            Interlocked.Increment(ref running);
            await gate.Task;
            Interlocked.Decrement(ref running);
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        for (int i = 0; i < 6; i++)
        {
            await app.SendTaskAsync("t.wait", ct: Ct);
        }

        Assert.True(await Poll.UntilAsync(() => Volatile.Read(ref running) == 1, s_wait));
        worker.Worker.GrowPool(3);

        Assert.Equal(4, worker.Worker.Concurrency);
        Assert.True(await Poll.UntilAsync(() => Volatile.Read(ref running) == 4, s_wait), $"{running} running");

        worker.Worker.ShrinkPool(2);
        Assert.Equal(2, worker.Worker.Concurrency);
        gate.SetResult();
        Assert.True(await Poll.UntilAsync(() => worker.Worker.Processed == 6, s_wait));
    }

    [Fact]
    public async Task Autoscale_GrowsUnderABacklog_ShrinksBackOnceIdleForTheKeepAlive()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-04T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.Autoscale = "8,2";
            o.TimeProvider = time;
        });
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int running = 0;
        app.Task("t.wait", async () =>
        {
            Interlocked.Increment(ref running);
            await gate.Task;
            Interlocked.Decrement(ref running);
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        Assert.Equal((2, 8), (worker.Worker.Concurrency, worker.Worker.MaxConcurrency));

        for (int i = 0; i < 20; i++)
        {
            await app.SendTaskAsync("t.wait", ct: Ct);
        }

        // Two run; the rest wait in the prefetch window (8 x 4) until the autoscaler looks.
        Assert.True(await Poll.UntilAsync(() => Volatile.Read(ref running) == 2 && worker.Worker.GetRequests(Celeriac.Worker.RequestState.Reserved).Count == 18, s_wait));
        Assert.Equal(2, worker.Worker.Concurrency);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await Poll.UntilAsync(() => worker.Worker.Concurrency == 8, s_wait), $"pool {worker.Worker.Concurrency}");
        Assert.True(await Poll.UntilAsync(() => Volatile.Read(ref running) == 8, s_wait), $"{running} running");
        Assert.Equal(8, worker.Worker.GetRequests(Celeriac.Worker.RequestState.Active).Count);

        gate.SetResult();
        Assert.True(await Poll.UntilAsync(() => worker.Worker.Processed == 20, s_wait));

        // Idle, but grown less than the keep-alive (30 s) ago: it stays at 8 ...
        time.Advance(TimeSpan.FromSeconds(28));
        Assert.Equal(8, worker.Worker.Concurrency);

        // ... and shrinks back to the minimum once the keep-alive has passed.
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await Poll.UntilAsync(() => worker.Worker.Concurrency == 2, s_wait), $"pool {worker.Worker.Concurrency}");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen = Volatile.Read(ref target);
        while (value > seen)
        {
            int prior = Interlocked.CompareExchange(ref target, value, seen);
            if (prior == seen)
            {
                return;
            }

            seen = prior;
        }
    }
}
