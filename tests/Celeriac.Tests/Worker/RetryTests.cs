using System.Collections.Concurrent;
using System.Diagnostics;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>
/// Retries as Celery's users know them (<c>self.retry</c>, <c>max_retries</c>, <c>autoretry_for</c>, back-off), on a
/// real worker over SQLite, Redis and RabbitMQ: what runs when, what a client reads meanwhile, and what the task ends with.
/// </summary>
public sealed class RetryTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(20);
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "retry");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public void Dispose() => _brokers.Dispose();

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task RetryAsync_WithCountdown_RunsAgainAfterItAsTheSameTaskWithRetriesPlusOne(string broker)
    {
        var attempts = new Attempts();
        await using Run run = await RunAsync(broker, "t.retry_once", async (long x, TaskContext context) =>
        {
            attempts.Add(context);
            return context.Retries == 0
                ? throw await context.RetryAsync(new InvalidOperationException("not yet"), countdown: TimeSpan.FromMilliseconds(400))
                : x + context.Retries;
        }, args: [41]);
        AsyncResult result = run.Result;

        Assert.Equal(42, await result.GetAsync<long>(s_wait, Ct));
        Attempt[] runs = attempts.All;
        Assert.Equal([0, 1], runs.Select(a => a.Retries));
        Assert.All(runs, a => Assert.Equal(result.Id, a.Id));
        Assert.All(runs, a => Assert.Equal(result.Id, a.RootId));

        // As Celery sends it from inside the task: the task is the retry's parent, and the retry has an ETA.
        Assert.Equal([null, result.Id], runs.Select(a => a.ParentId));
        Assert.Null(runs[0].Eta);
        Assert.NotNull(runs[1].Eta);
        Assert.InRange(runs[1].At - runs[0].At, TimeSpan.FromMilliseconds(390), TimeSpan.FromSeconds(5));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task RetryAsync_UpToTheDefaultMaxOfThree_EachRunSeesTheCountGoUp(string broker)
    {
        var attempts = new Attempts();
        await using Run run = await RunAsync(broker, "t.until_three", async (TaskContext context) =>
        {
            attempts.Add(context);
            return context.Retries < 3
                ? throw await context.RetryAsync(countdown: TimeSpan.FromMilliseconds(50))
                : context.Retries;
        });

        Assert.Equal(3, await run.Result.GetAsync<int>(s_wait, Ct));
        Assert.Equal([0, 1, 2, 3], attempts.All.Select(a => a.Retries));
        Assert.Equal([0, 1, 2, 3], attempts.All.Select(a => a.HeaderRetries));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task RetryAsync_PastMaxRetries_FailsWithTheOriginalError(string broker)
    {
        var attempts = new Attempts();
        await using Run run = await RunAsync(broker, "t.always_down", async (TaskContext context) =>
        {
            attempts.Add(context);
            throw await context.RetryAsync(new TimeoutException("the mail server is down"), countdown: TimeSpan.FromMilliseconds(50));
        }, new TaskOptions { MaxRetries = 2 });

        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => run.Result.GetAsync<int>(s_wait, Ct));
        Assert.Equal((TaskStates.Failure, "TimeoutException", "System", "the mail server is down"), (error.State, error.ExceptionType, error.ExceptionModule, error.RemoteMessage));
        Assert.Contains("the mail server is down", error.RemoteTraceback, StringComparison.Ordinal);
        Assert.Equal([0, 1, 2], attempts.All.Select(a => a.Retries));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task RetryAsync_PastMaxRetriesWithoutReason_FailsWithMaxRetriesExceededError(string broker)
    {
        var attempts = new Attempts();
        await using Run run = await RunAsync(broker, "t.no_reason", async (long x, TaskContext context) =>
        {
            attempts.Add(context);
            throw await context.RetryAsync(countdown: TimeSpan.FromMilliseconds(50));
        }, new TaskOptions { MaxRetries = 1 }, 5);

        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => run.Result.GetAsync<int>(s_wait, Ct));
        Assert.Equal(("MaxRetriesExceededError", "celery.exceptions"), (error.ExceptionType, error.ExceptionModule));
        Assert.Equal($"Can't retry t.no_reason[{run.Result.Id}] args:(5,) kwargs:{{}}", error.RemoteMessage);
        Assert.Equal([0, 1], attempts.All.Select(a => a.Retries));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task RetryAsync_RetryRunsBeforeTheFirstRunsRetryIsStored_TheLastRunsStateWins(string broker)
    {
        // The first run is held between sending its retry and storing RETRY (its task_retry handler blocks), as a loaded
        // machine may hold it. Its retry, due at once, must not run and store its FAILURE before that RETRY, which would
        // overwrite it: the task would read RETRY for ever.
        var attempts = new Attempts();
        using var secondStarted = new ManualResetEventSlim();
        CeleriacApp app = await _brokers.NewAppAsync(broker);
        app.Task("t.quick_retry", async (TaskContext context) =>
        {
            attempts.Add(context);
            if (context.Retries > 0)
            {
                secondStarted.Set();
            }

            throw await context.RetryAsync(countdown: TimeSpan.Zero);
        }, new TaskOptions { MaxRetries = 1 });
        app.Signals.TaskRetry += (_, e) =>
        {
            if (secondStarted.Wait(TimeSpan.FromSeconds(1)))
            {
                // The retry ran meanwhile: hold the RETRY until its FAILURE is stored, the order that loses the outcome.
                SpinWait.SpinUntil(() => app.ResultBackend.GetAsync(e.TaskId).AsTask().GetAwaiter().GetResult()?.Status == TaskStates.Failure, TimeSpan.FromSeconds(10));
            }
        };
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        AsyncResult result = await app.SendTaskAsync("t.quick_retry", [], ct: Ct);

        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<int>(s_wait, Ct));
        Assert.Equal("MaxRetriesExceededError", error.ExceptionType);
        Assert.Equal([0, 1], attempts.All.Select(a => a.Retries));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task RetryAsync_MaxRetriesArgument_OverridesTheTasksLimit(string broker)
    {
        var attempts = new Attempts();
        await using Run run = await RunAsync(broker, "t.once_only", async (TaskContext context) =>
        {
            attempts.Add(context);
            throw await context.RetryAsync(new IOException("gone"), countdown: TimeSpan.FromMilliseconds(50), maxRetries: 0);
        }, new TaskOptions { MaxRetries = 5 });

        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => run.Result.GetAsync<int>(s_wait, Ct));
        Assert.Equal(("IOException", "gone"), (error.ExceptionType, error.RemoteMessage));
        Assert.Single(attempts.All);
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task RetryException_ThrownDirectly_TheWorkerSendsTheRetry(string broker)
    {
        var attempts = new Attempts();
        await using Run run = await RunAsync(broker, "t.direct", (TaskContext context) =>
        {
            attempts.Add(context);
            return context.Retries == 0 ? throw new RetryException(new IOException("busy"), TimeSpan.FromMilliseconds(300)) : "done";
        });

        Assert.Equal("done", await run.Result.GetAsync<string>(s_wait, Ct));
        Assert.Equal([0, 1], attempts.All.Select(a => a.Retries));
        Assert.InRange(attempts.All[1].At - attempts.All[0].At, TimeSpan.FromMilliseconds(290), TimeSpan.FromSeconds(5));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task Retry_WhileItWaits_ClientReadsRetryWithTheReasonThenSuccess(string broker)
    {
        await using Run run = await RunAsync(broker, "t.busy_once", async (TaskContext context) => context.Retries == 0
            ? throw await context.RetryAsync(new InvalidOperationException("the printer is busy"), countdown: TimeSpan.FromSeconds(1.5))
            : "printed");
        AsyncResult result = run.Result;

        await Poll.UntilAsync(async () => await result.GetStateAsync(Ct) == TaskStates.Retry, s_wait);

        TaskResultMeta retry = Assert.IsType<TaskResultMeta>(result.Meta);
        Assert.Equal(TaskStates.Retry, retry.Status);
        Assert.False(result.Ready);
        Assert.Null(retry.DateDone);
        Assert.Equal(new ExceptionInfo("InvalidOperationException", "the printer is busy", "System"), retry.Exception);
        Assert.Contains("Retry in 1.5s: InvalidOperationException('the printer is busy')", retry.Traceback, StringComparison.Ordinal);
        Assert.Equal("printed", await result.GetAsync<string>(s_wait, Ct));
        Assert.Equal(TaskStates.Success, result.State);
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task AutoRetryFor_WithBackoff_DelaysDoubleUpToTheMaximum(string broker)
    {
        var attempts = new Attempts();
        await using Run run = await RunAsync(broker, "t.backoff", FailingUntil(attempts, 3, () => new FileNotFoundException("not there yet")), new TaskOptions
        {
            AutoRetryFor = [typeof(IOException)], // FileNotFoundException is one
            RetryBackoff = TimeSpan.FromMilliseconds(300),
            RetryBackoffMax = TimeSpan.FromMilliseconds(700),
            RetryJitter = false,
        });

        Assert.Equal(3, await run.Result.GetAsync<int>(s_wait, Ct));
        TimeSpan[] gaps = attempts.Gaps;
        double[] expected = [300, 600, 700];
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.InRange(gaps[i].TotalMilliseconds, expected[i] - 10, expected[i] + 400);
        }
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task AutoRetryFor_WithJitter_EachDelayIsBetweenZeroAndTheCap(string broker)
    {
        var attempts = new Attempts();
        await using Run run = await RunAsync(broker, "t.jitter", FailingUntil(attempts, 4, () => new TimeoutException("slow")), new TaskOptions
        {
            AutoRetryFor = [typeof(TimeoutException)],
            MaxRetries = 4,
            RetryBackoff = TimeSpan.FromMilliseconds(250),
            RetryBackoffMax = TimeSpan.FromMilliseconds(500),
        });

        Assert.Equal(4, await run.Result.GetAsync<int>(s_wait, Ct));
        TimeSpan[] caps = [TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(500)];
        Assert.Equal(caps.Length, attempts.Gaps.Length);
        Assert.All(attempts.Gaps.Zip(caps), g => Assert.InRange(g.First, TimeSpan.Zero, g.Second + TimeSpan.FromMilliseconds(400)));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task AutoRetryFor_OtherExceptionType_FailsAtOnce(string broker)
    {
        var attempts = new Attempts();
        await using Run run = await RunAsync(broker, "t.wrong_type", FailingUntil(attempts, 1, () => new ArgumentException("bad input")), new TaskOptions { AutoRetryFor = [typeof(IOException)], DefaultRetryDelay = TimeSpan.Zero });

        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => run.Result.GetAsync<int>(s_wait, Ct));
        Assert.Equal("ArgumentException", error.ExceptionType);
        Assert.Single(attempts.All);
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task QuickstartFlaky_TwoFailures_ReturnsThirdAttempt_AndSixFailuresEndInTheSixth(string broker)
    {
        await using CeleriacApp app = await _brokers.NewAppAsync(broker);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        var clock = Stopwatch.StartNew();

        AsyncResult two = await app.SendTaskAsync("tasks.flaky", [2], ct: Ct);
        AsyncResult six = await app.SendTaskAsync("tasks.flaky", [6], ct: Ct);

        Assert.Equal(3, await two.GetAsync<long>(s_wait, Ct));
        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => six.GetAsync<long>(s_wait, Ct));
        Assert.Equal(("FlakyException", "Quickstart", "attempt 6 of 6 planned failures"), (error.ExceptionType, error.ExceptionModule, error.RemoteMessage));

        // Five retries 0.2 s apart, without back-off.
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.95), TimeSpan.FromSeconds(15));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task Retry_WithLateAck_RunsTwiceAndLeavesNothingOnTheBroker(string broker)
    {
        string url = await _brokers.UrlAsync(broker);

        // The final state is read by 'after', an app other than the sender.
        string? results = _brokers.SharedResultBackend(broker);
        string queue = "late-" + Guid.NewGuid().ToString("N")[..8];
        int runs = 0;
        AsyncResult result;
        await using (CeleriacApp app = await _brokers.NewAppAsync(broker, o =>
        {
            o.BrokerUrl = url;
            o.ResultBackend = results;
            o.DefaultQueue = queue;
            o.AcksLate = true;
        }))
        {
            app.Task("t.late", async (TaskContext context) =>
            {
                Interlocked.Increment(ref runs);
                return context.Retries == 0 ? throw await context.RetryAsync(countdown: TimeSpan.FromMilliseconds(200)) : context.Retries;
            });
            await using RunningWorker worker = await RunningWorker.StartAsync(app);
            result = await app.SendTaskAsync("t.late", ct: Ct);
            Assert.Equal(1, await result.GetAsync<int>(s_wait, Ct));
            await worker.StopAsync();
        }

        // A message never acked would be back in the queue now that its worker stopped (on Redis: left in 'unacked').
        await using CeleriacApp after = await _brokers.NewAppAsync(broker, o =>
        {
            o.BrokerUrl = url;
            o.ResultBackend = results;
            o.DefaultQueue = queue;
        });
        Assert.Equal(0, await after.Transport.GetQueueLengthAsync(queue, Ct));
        if (broker == "redis")
        {
            string db = new Uri(url).AbsolutePath.Trim('/');
            Assert.Equal("0", (await redis.Server.CliAsync("-n", db, "HLEN", "unacked")).Trim());
        }

        Assert.Equal(2, runs);
        Assert.Equal(TaskStates.Success, await after.AsyncResult(result.Id).GetStateAsync(Ct));
    }

    [Fact]
    public void Backoff_NoJitter_IsCelerysExponentialCappedAtTheMaximum()
    {
        TimeSpan factor = TimeSpan.FromMilliseconds(150), max = TimeSpan.FromSeconds(1);

        TimeSpan[] delays = [.. Enumerable.Range(0, 6).Select(r => TaskRetry.Backoff(factor, r, max, fullJitter: false, Random.Shared))];

        Assert.Equal([150, 300, 600, 1000, 1000, 1000], delays.Select(d => d.TotalMilliseconds));
        Assert.Equal(max, TaskRetry.Backoff(factor, 5000, max, fullJitter: false, Random.Shared));
        Assert.Equal(TimeSpan.Zero, TaskRetry.Backoff(TimeSpan.Zero, 3, max, fullJitter: false, Random.Shared));
    }

    [Fact]
    public void Backoff_FullJitter_SpreadsOverZeroToTheComputedDelay()
    {
        var random = new Random(7);
        TimeSpan cap = TimeSpan.FromMilliseconds(800);

        TimeSpan[] delays = [.. Enumerable.Range(0, 2000).Select(_ => TaskRetry.Backoff(TimeSpan.FromMilliseconds(200), 2, TimeSpan.FromMinutes(1), fullJitter: true, random))];

        Assert.All(delays, d => Assert.InRange(d, TimeSpan.Zero, cap));
        Assert.True(delays.Min() < cap / 20 && delays.Max() > cap * 0.95, $"delays from {delays.Min()} to {delays.Max()}");
        Assert.InRange(delays.Average(d => d.TotalMilliseconds), 340, 460);
    }

    [Fact]
    public void AutoRetryCountdown_WithoutBackoff_IsNullForTheDefaultDelay()
    {
        var options = new TaskOptions { AutoRetryFor = [typeof(IOException)] };

        Assert.Null(TaskRetry.AutoRetryCountdown(options, 2, Random.Shared));
        Assert.True(TaskRetry.IsAutoRetried(options, new FileNotFoundException()));
        Assert.False(TaskRetry.IsAutoRetried(options, new InvalidOperationException()));
        Assert.False(TaskRetry.IsAutoRetried(new TaskOptions { AutoRetryFor = [typeof(Exception)] }, new TaskArgumentException("x")));
    }

    [Fact]
    public void RetryException_Message_IsCelerysWording()
    {
        Assert.Equal("Retry in 0.2s: FlakyException('attempt 1 of 2')", new RetryException(new Quickstart.FlakyException("attempt 1 of 2"), TimeSpan.FromSeconds(0.2)).Message);
        Assert.Equal("Retry in 180s", new RetryException(null, TimeSpan.FromMinutes(3)).Message);
        Assert.Equal("Retry at 2026-01-02 03:04:05+00:00: KeyError(\"it's\")",
            new RetryException(new TaskFailedException("id", TaskStates.Failure, new ExceptionInfo("KeyError", "it's", "builtins"), null), eta: new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero)).Message);
        Assert.Equal("custom", new RetryException("custom").Message);
    }

    /// <summary>Starts a worker on a new app with one task, <paramref name="task"/>, and sends one call of it.</summary>
    private async Task<Run> RunAsync(string broker, string name, Delegate task, TaskOptions? options = null, params object?[] args)
    {
        CeleriacApp app = await _brokers.NewAppAsync(broker);
        app.Task(name, task, options);
        RunningWorker worker = await RunningWorker.StartAsync(app);
        return new Run(worker, await app.SendTaskAsync(name, args, ct: Ct));
    }

    /// <summary>A task that records each run and throws <paramref name="error"/> until it has been retried <paramref name="retries"/> times, then returns its retries.</summary>
    private static Func<TaskContext, int> FailingUntil(Attempts attempts, int retries, Func<Exception> error) => context =>
    {
        attempts.Add(context);
        return context.Retries < retries ? throw error() : context.Retries;
    };

    /// <summary>A worker and the call sent to it; disposing stops the worker and its app.</summary>
    private sealed record Run(RunningWorker Worker, AsyncResult Result) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Worker.DisposeAsync();
    }

    /// <summary>What each run of a task saw, and when it started.</summary>
    private sealed record Attempt(string Id, int Retries, int HeaderRetries, string? ParentId, string? RootId, DateTimeOffset? Eta, TimeSpan At);

    private sealed class Attempts
    {
        private readonly ConcurrentQueue<Attempt> _all = new();
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public Attempt[] All => [.. _all];

        /// <summary>The time between one run's start and the next one's.</summary>
        public TimeSpan[] Gaps => [.. All.Zip(All.Skip(1), (a, b) => b.At - a.At)];

        public void Add(TaskContext c) => _all.Enqueue(new Attempt(c.Id, c.Retries, c.Headers.Retries, c.ParentId, c.RootId, c.Eta, _clock.Elapsed));
    }
}
