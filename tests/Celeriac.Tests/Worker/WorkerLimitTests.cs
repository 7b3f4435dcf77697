using System.Collections.Concurrent;
using System.Diagnostics;
using Celeriac.Protocol;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;
using Celeriac.Transport;
using Microsoft.Data.Sqlite;

namespace Celeriac.Tests.Worker;

/// <summary>
/// Time limits and rate limits as users see them, on a real store. Each test has its own store scope (a SQLite file,
/// a Redis queue, a RabbitMQ queue in a vhost of the test's own); the worker app registers the tasks, and a second app
/// with no tasks sends by name where the test needs the worker to find the limits itself (a client that knows nothing
/// of them, as a Python client).
/// </summary>
public abstract class WorkerLimitTests
{
    private const string CelerySoft = """{"exc_type": "SoftTimeLimitExceeded", "exc_message": [], "exc_module": "billiard.exceptions"}""";

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Options of an app on the store named <paramref name="scope"/>: every app made with the same scope shares it.</summary>
    protected abstract CeleriacOptions Options(string scope);

    private (CeleriacApp Worker, CeleriacApp Client) NewApps(Action<CeleriacOptions>? configure = null)
    {
        string scope = Guid.NewGuid().ToString("N")[..12];
        CeleriacOptions worker = Options(scope);
        worker.Concurrency = 4;
        worker.NodeName = "limits-" + scope + "@test";
        configure?.Invoke(worker);
        return (new CeleriacApp(worker), new CeleriacApp(Options(scope)));
    }

    [Fact]
    public async Task SoftTimeLimit_FromTaskOptions_TokenCancelledCleanupRunsAndResultIsSoftTimeLimitExceeded()
    {
        (CeleriacApp app, CeleriacApp client) = NewApps();
        await using CeleriacApp clientScope = client;
        var cleanup = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task("limits.soft", async (CancellationToken ct) =>
        {
            long start = Stopwatch.GetTimestamp();
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(30), ct);
                return "slept";
            }
            catch (OperationCanceledException)
            {
                cleanup.TrySetResult(Stopwatch.GetElapsedTime(start));
                throw;
            }
        }, new TaskOptions { SoftTimeLimit = TimeSpan.FromSeconds(0.5) });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        AsyncResult result = await client.SendTaskAsync("limits.soft", ct: Ct);
        TaskResultMeta meta = await result.WaitAsync(TimeSpan.FromSeconds(15), Ct);

        Assert.Equal(TaskStates.Failure, meta.Status);
        JsonAssert.Equal(JsonAssert.Parse(CelerySoft), meta.ResultElement);
        Assert.Contains("TaskCanceledException", meta.Traceback, StringComparison.Ordinal);
        Assert.InRange(await cleanup.Task.WaitAsync(TimeSpan.FromSeconds(5), Ct), TimeSpan.FromSeconds(0.45), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task SoftTimeLimit_TaskCleansUpAndReturns_ResultStands()
    {
        (CeleriacApp app, CeleriacApp client) = NewApps();
        await using CeleriacApp clientScope = client;
        app.Task("limits.tidy", async (CancellationToken ct) =>
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(30), ct);
                return "slept";
            }
            catch (OperationCanceledException)
            {
                return "tidied up";
            }
        }, new TaskOptions { SoftTimeLimit = TimeSpan.FromSeconds(0.3) });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        AsyncResult result = await client.SendTaskAsync("limits.tidy", ct: Ct);

        Assert.Equal("tidied up", await result.GetAsync<string>(TimeSpan.FromSeconds(15), Ct));
    }

    [Fact]
    public async Task HardTimeLimit_TaskIgnoresToken_TimeLimitExceededAndSlotFreeForNextTask()
    {
        (CeleriacApp app, CeleriacApp client) = NewApps(o => o.Concurrency = 1);
        await using CeleriacApp clientScope = client;
        var abandonedEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task("limits.stubborn", () =>
        {
            // Blocks its thread and never looks at the token: only the hard limit ends its run.
            Thread.Sleep(TimeSpan.FromSeconds(4));
            abandonedEnded.TrySetResult();
            return "finished late";
        }, new TaskOptions { TimeLimit = TimeSpan.FromSeconds(1) });
        app.Task("limits.add", (int x, int y) => x + y);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        var sent = Stopwatch.StartNew();
        AsyncResult stubborn = await client.SendTaskAsync("limits.stubborn", ct: Ct);
        AsyncResult next = await client.SendTaskAsync("limits.add", [2, 3], ct: Ct);

        // One slot: the next task runs once the hard limit has freed it, long before the stubborn code ends.
        Assert.Equal(5, await next.GetAsync<int>(TimeSpan.FromSeconds(15), Ct));
        TimeSpan nextDone = sent.Elapsed;
        Assert.InRange(nextDone, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(3.5));

        TaskResultMeta meta = await stubborn.WaitAsync(TimeSpan.FromSeconds(5), Ct);
        Assert.Equal(TaskStates.Failure, meta.Status);
        JsonAssert.Equal(JsonAssert.Parse("""{"exc_type": "TimeLimitExceeded", "exc_message": [1], "exc_module": "billiard.exceptions"}"""), meta.ResultElement);
        Assert.Null(meta.Traceback);

        // The abandoned code runs to its end in the background; what it returns is discarded.
        await abandonedEnded.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        await Task.Delay(200, Ct);
        Assert.Equal(TaskStates.Failure, (await stubborn.WaitAsync(TimeSpan.FromSeconds(5), Ct)).Status);
    }

    [Fact]
    public async Task TimeLimits_FromWorkerDefaults_SoftAndHardApply()
    {
        (CeleriacApp app, CeleriacApp client) = NewApps(o =>
        {
            o.TaskSoftTimeLimit = TimeSpan.FromSeconds(0.4);
            o.TaskTimeLimit = TimeSpan.FromSeconds(0.8);
        });
        await using CeleriacApp clientScope = client;
        app.Task("limits.polite", (CancellationToken ct) => Task.Delay(TimeSpan.FromSeconds(30), ct));
        app.Task("limits.deaf", async () => await Task.Delay(TimeSpan.FromSeconds(3)));
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        AsyncResult polite = await client.SendTaskAsync("limits.polite", ct: Ct);
        AsyncResult deaf = await client.SendTaskAsync("limits.deaf", ct: Ct);

        JsonAssert.Equal(JsonAssert.Parse(CelerySoft), (await polite.WaitAsync(TimeSpan.FromSeconds(15), Ct)).ResultElement);
        TaskResultMeta hard = await deaf.WaitAsync(TimeSpan.FromSeconds(15), Ct);
        Assert.Equal(("TimeLimitExceeded", "0.8"), (hard.Exception?.Type, hard.Exception?.Message));
    }

    [Fact]
    public async Task TimeLimits_FromMessageHeader_WinOverTaskOptions()
    {
        (CeleriacApp app, CeleriacApp client) = NewApps();
        await using CeleriacApp clientScope = client;
        var limits = new TaskOptions { SoftTimeLimit = TimeSpan.FromSeconds(60), TimeLimit = TimeSpan.FromSeconds(60) };
        app.Task("limits.polite", (CancellationToken ct) => Task.Delay(TimeSpan.FromSeconds(30), ct), limits);
        app.Task("limits.deaf", async () => await Task.Delay(TimeSpan.FromSeconds(3)), limits);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        // Sent as a Python client sends them: the timelimit header [hard, soft].
        var started = Stopwatch.StartNew();
        AsyncResult polite = await client.SendTaskAsync("limits.polite", options: new ApplyOptions { SoftTimeLimit = TimeSpan.FromSeconds(0.5) }, ct: Ct);
        AsyncResult deaf = await client.SendTaskAsync("limits.deaf", options: new ApplyOptions { TimeLimit = TimeSpan.FromSeconds(1) }, ct: Ct);

        JsonAssert.Equal(JsonAssert.Parse(CelerySoft), (await polite.WaitAsync(TimeSpan.FromSeconds(15), Ct)).ResultElement);
        TaskResultMeta hard = await deaf.WaitAsync(TimeSpan.FromSeconds(15), Ct);
        Assert.Equal(("TimeLimitExceeded", "1"), (hard.Exception?.Type, hard.Exception?.Message));
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(2.9), $"took {started.Elapsed}");
    }

    [Fact]
    public async Task HardTimeLimit_AcksLateWithoutAcksOnFailureOrTimeout_MessageDroppedNotRunAgain()
    {
        (CeleriacApp app, CeleriacApp client) = NewApps(o =>
        {
            o.AcksLate = true;
            o.AcksOnFailureOrTimeout = false;
        });
        await using CeleriacApp clientScope = client;
        int runs = 0;
        app.Task("limits.deaf", async () =>
        {
            Interlocked.Increment(ref runs);
            await Task.Delay(TimeSpan.FromSeconds(2));
        }, new TaskOptions { TimeLimit = TimeSpan.FromSeconds(0.3) });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        AsyncResult deaf = await client.SendTaskAsync("limits.deaf", ct: Ct);

        Assert.Equal("TimeLimitExceeded", (await deaf.WaitAsync(TimeSpan.FromSeconds(15), Ct)).Exception?.Type);
        await worker.StopAsync();
        Assert.Equal(1, Volatile.Read(ref runs));
        Assert.Equal(0, await client.Transport.GetQueueLengthAsync(client.Options.DefaultQueue, Ct));
    }

    /// <summary>Issue 6's acceptance test for rate limits.</summary>
    [Fact]
    public async Task RateLimit_50PerSecondUnderFullQueue_HoldsWithin10PercentOver20sWhileOtherTasksRunAtFullSpeed()
    {
        const int LimitedCount = 1_500;
        const int FreeCount = 12_000;
        var window = TimeSpan.FromSeconds(20);
        (CeleriacApp app, CeleriacApp client) = NewApps();
        await using CeleriacApp clientScope = client;
        var limitedRuns = new ConcurrentQueue<long>();
        int freeRuns = 0;
        var freeDone = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        var clock = Stopwatch.StartNew();
        app.Task("limits.limited", () => limitedRuns.Enqueue(Stopwatch.GetTimestamp()), new TaskOptions { RateLimit = "50/s", IgnoreResult = true });
        app.Task("limits.free", () =>
        {
            if (Interlocked.Increment(ref freeRuns) == FreeCount)
            {
                freeDone.TrySetResult(clock.Elapsed);
            }
        }, new TaskOptions { IgnoreResult = true });

        // The queue is full before the worker starts: one limited task among every nine.
        string queue = client.Options.DefaultQueue;
        await client.Transport.DeclareQueueAsync(client.Options.DeclarationOf(queue), Ct);
        var batch = new List<TransportMessage>(500);
        for (int i = 0; i < LimitedCount + FreeCount; i++)
        {
            batch.Add(client.BuildMessage(i % 9 == 0 ? "limits.limited" : "limits.free", [], null, null, out _));
            if (batch.Count == 500)
            {
                await client.Transport.PublishAsync("", queue, batch, Ct);
                batch.Clear();
            }
        }

        await client.Transport.PublishAsync("", queue, batch, Ct);
        clock.Restart();
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        // Measured from the first limited run, for 20 s.
        while (limitedRuns.IsEmpty && clock.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(10, Ct);
        }

        Assert.True(limitedRuns.TryPeek(out long first), "no limited task ran within 15 s");
        TimeSpan sinceFirst = Stopwatch.GetElapsedTime(first);
        await Task.Delay(window - sinceFirst + TimeSpan.FromMilliseconds(100), Ct);
        long end = first + (long)(window.TotalSeconds * Stopwatch.Frequency);
        int inWindow = limitedRuns.Count(t => t < end);
        double rate = inWindow / window.TotalSeconds;
        Assert.InRange(rate, 45, 55);

        // The other tasks were not held back: all of them ran in a fraction of the time (at more than 20× the limited rate).
        TimeSpan freeTime = await freeDone.Task.WaitAsync(TimeSpan.FromSeconds(5), Ct);
        TestContext.Current.SendDiagnosticMessage($"limited: {inWindow} runs in 20 s = {rate:0.0}/s; free: {FreeCount} in {freeTime.TotalSeconds:0.00} s");
        Assert.True(FreeCount / freeTime.TotalSeconds > 1_000, $"{FreeCount} free tasks took {freeTime}");
    }

    [Theory]
    [InlineData("worker API")]
    [InlineData("remote control")]
    public async Task RateLimit_ChangedWhileRunning_HeldTasksFollowNewRate(string how)
    {
        (CeleriacApp app, CeleriacApp client) = NewApps();
        await using CeleriacApp clientScope = client;
        int runs = 0;
        app.Task("limits.slow", () => Interlocked.Increment(ref runs), new TaskOptions { RateLimit = "1/m" });
        AsyncResult[] sent = await SendManyAsync(client, "limits.slow", 10);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        await AssertOnlyFirstRunsAsync(() => Volatile.Read(ref runs));
        if (how == "worker API")
        {
            worker.Worker.SetRateLimit("limits.slow", "100/s");
        }
        else
        {
            // Celery's rate_limit command over the broker's pidbox, from another app.
            await client.SetRateLimitAsync("limits.slow", null, [worker.Worker.NodeName], Ct);
        }

        await AllSucceedAsync(sent, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task RateLimit_WarmStop_HeldTasksGoBackToBrokerAndRunOnNextWorker()
    {
        (CeleriacApp app, CeleriacApp client) = NewApps();
        await using CeleriacApp clientScope = client;
        int runs = 0;
        app.Task("limits.slow", () => Interlocked.Increment(ref runs), new TaskOptions { RateLimit = "1/m" });
        AsyncResult[] sent = await SendManyAsync(client, "limits.slow", 5);
        await using (RunningWorker first = await RunningWorker.StartAsync(app))
        {
            await AssertOnlyFirstRunsAsync(() => Volatile.Read(ref runs));
            await first.StopAsync();
        }

        Assert.Equal(4, await client.Transport.GetQueueLengthAsync(client.Options.DefaultQueue, Ct));

        // A worker where the task has no limit takes them over.
        var next = new CeleriacApp(Options(ScopeOf(client)));
        next.Task("limits.slow", () => Interlocked.Increment(ref runs));
        await using RunningWorker second = await RunningWorker.StartAsync(next);
        await AllSucceedAsync(sent, TimeSpan.FromSeconds(10));
        Assert.Equal(5, Volatile.Read(ref runs));
    }

    /// <summary>The scope a client app was made for (its queue name carries it).</summary>
    protected abstract string ScopeOf(CeleriacApp app);

    private static async Task<AsyncResult[]> SendManyAsync(CeleriacApp client, string name, int count)
    {
        var results = new AsyncResult[count];
        for (int i = 0; i < count; i++)
        {
            results[i] = await client.SendTaskAsync(name, ct: Ct);
        }

        return results;
    }

    private static async Task AssertOnlyFirstRunsAsync(Func<int> runs)
    {
        var waited = Stopwatch.StartNew();
        while (runs() == 0 && waited.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(20, Ct);
        }

        // One token, then none for a minute: the others wait.
        await Task.Delay(TimeSpan.FromSeconds(1), Ct);
        Assert.Equal(1, runs());
    }

    private static async Task AllSucceedAsync(AsyncResult[] results, TimeSpan within)
    {
        var waited = Stopwatch.StartNew();
        foreach (AsyncResult r in results)
        {
            TimeSpan left = within - waited.Elapsed;
            TaskResultMeta meta = await r.WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1), Ct);
            Assert.Equal(TaskStates.Success, meta.Status);
        }
    }
}

public sealed class SqliteWorkerLimitTests : WorkerLimitTests, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-limits-").FullName;

    protected override CeleriacOptions Options(string scope) => new() { BrokerUrl = "sqlite:///" + Path.Join(_directory, scope + ".db"), DefaultQueue = "q" + scope };

    protected override string ScopeOf(CeleriacApp app) => app.Options.DefaultQueue[1..];

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}

public sealed class RedisWorkerLimitTests(RedisServerFixture redis) : WorkerLimitTests, IClassFixture<RedisServerFixture>
{
    protected override CeleriacOptions Options(string scope) => new() { BrokerUrl = redis.Server.Url(0), ResultBackend = redis.Server.Url(1), DefaultQueue = "q" + scope };

    protected override string ScopeOf(CeleriacApp app) => app.Options.DefaultQueue[1..];
}

/// <summary>
/// On a vhost of the test's own; results by <c>rpc://</c>, which serves here because the client app that sends each
/// task is the one that reads its result.
/// </summary>
public sealed class RabbitMqWorkerLimitTests(RabbitMqServerFixture rabbit) : WorkerLimitTests, IAsyncLifetime
{
    private string _url = null!;

    public async ValueTask InitializeAsync() => _url = (await rabbit.ServerAsync()).Url(await rabbit.NewVhostAsync());

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    protected override CeleriacOptions Options(string scope) => new() { BrokerUrl = _url, DefaultQueue = "q" + scope };

    protected override string ScopeOf(CeleriacApp app) => app.Options.DefaultQueue[1..];
}
