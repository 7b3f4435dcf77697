using System.Diagnostics;
using Celeriac.Testing;
using Celeriac.Tests.Support;
using Celeriac.Worker;

namespace Celeriac.Tests.Testing;

/// <summary>The test harness users run their own tests with: observed lists, inactivity, fake time, canvas.</summary>
public sealed class TestHarnessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>An app whose URLs point nowhere: the harness must replace them, or every send would fail.</summary>
    private static CeleriacApp NewApp() => new(new CeleriacOptions { BrokerUrl = "nowhere://broker", ResultBackend = "nowhere://results" });

    [Fact]
    public async Task Sent_Received_Succeeded_EachSeesTheCallWithItsArgumentsAndResult()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        await using var harness = new CeleriacTestHarness(app);

        AsyncResult result = await add.DelayAsync(2, 3);

        Assert.True(await harness.Sent.Any(add, t => t.Arg<int>(0) == 2 && t.Arg<int>(1) == 3, Ct));
        Assert.True(await harness.Received.Any("tasks.add", ct: Ct));
        Assert.True(await harness.Succeeded.Any(add, t => t.Result<int>() == 5, Ct));
        Assert.Equal(5, await result.GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(result.Id, harness.Succeeded.Snapshot().Single().TaskId);
        Assert.Empty(harness.Failed.Snapshot());
    }

    [Fact]
    public async Task Failed_SeesTheException()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask boom = app.Task("tasks.boom", int (string why) => throw new InvalidOperationException(why));
        await using var harness = new CeleriacTestHarness(app);

        await boom.DelayAsync("disk full");

        Assert.True(await harness.Failed.Any(boom, t => t.Exception is InvalidOperationException { Message: "disk full" }, Ct));
        Assert.False(await harness.Succeeded.Any(boom, ct: Ct));
    }

    [Fact]
    public async Task Any_NothingMatches_FalseAfterInactivityNotAfterTheTestTimeout()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        await using var harness = new CeleriacTestHarness(app) { InactivityTimeout = TimeSpan.FromMilliseconds(200), TestTimeout = TimeSpan.FromSeconds(20) };
        await add.DelayAsync(1, 1);

        // Proof that the harness would have seen a match: the same call is seen succeeding.
        Assert.True(await harness.Succeeded.Any(add, t => t.Result<int>() == 2, Ct));
        var clock = Stopwatch.StartNew();
        bool wrong = await harness.Succeeded.Any(add, t => t.Result<int>() == 3, Ct);

        Assert.False(wrong);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Any_WaitsWhileATaskRunsLongerThanTheInactivityTimeout()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask slow = app.Task("tasks.slow", async () =>
        {
            await Task.Delay(TimeSpan.FromMilliseconds(600)); // real time: the task itself is slow
            return "done";
        });
        await using var harness = new CeleriacTestHarness(app) { InactivityTimeout = TimeSpan.FromMilliseconds(100) };

        await slow.DelayAsync();

        Assert.True(await harness.Succeeded.Any(slow, ct: Ct));
    }

    [Fact]
    public async Task Countdown_OneHour_RunsInUnderASecondOfRealTime()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask later = app.Task("tasks.later", () => "ran");
        await using var harness = new CeleriacTestHarness(app);
        await harness.Ready.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        DateTimeOffset start = harness.Time.GetUtcNow();
        var clock = Stopwatch.StartNew();

        await later.ApplyAsync(options: new ApplyOptions { Countdown = TimeSpan.FromHours(1) }, ct: Ct);

        Assert.True(await harness.Succeeded.Any(later, ct: Ct));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.Elapsed} of real time");
        HarnessTask ran = harness.Received.Snapshot().Single();
        Assert.True(ran.At >= start + TimeSpan.FromHours(1), $"ran at {ran.At:O}, sent at {start:O}");
    }

    [Fact]
    public async Task AutoAdvanceOff_ETATaskWaitsUntilTimeIsMoved()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask later = app.Task("tasks.later", () => "ran");
        await using var harness = new CeleriacTestHarness(app) { AutoAdvance = false, InactivityTimeout = TimeSpan.FromMilliseconds(200) };

        await later.ApplyAsync(options: new ApplyOptions { Countdown = TimeSpan.FromMinutes(5) }, ct: Ct);

        Assert.True(await harness.Sent.Any(later, ct: Ct)); // it reached the broker
        Assert.False(await harness.Succeeded.Any(later, ct: Ct));
        await harness.AdvanceAsync(TimeSpan.FromMinutes(5), Ct);
        Assert.True(await harness.Succeeded.Any(later, ct: Ct));
    }

    [Fact]
    public async Task Retried_WithAnHourDelay_RetriesRunInstantlyAndAreSeen()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask flaky = app.Task("tasks.flaky", async (TaskContext ctx) =>
        {
            if (ctx.Retries < 2)
            {
                throw await ctx.RetryAsync(new TimeoutException("upstream down"), countdown: TimeSpan.FromHours(1));
            }

            return ctx.Retries;
        });
        await using var harness = new CeleriacTestHarness(app);
        var clock = Stopwatch.StartNew();

        AsyncResult result = await flaky.DelayAsync();

        Assert.True(await harness.Succeeded.Any(flaky, t => t.Result<int>() == 2, Ct));
        Assert.Equal(2, harness.Retried.Snapshot().Count);
        Assert.All(harness.Retried.Snapshot(), r => Assert.IsType<TimeoutException>(r.Exception));
        Assert.Equal(3, harness.Sent.Snapshot().Count(s => s.TaskId == result.Id)); // the call and two retries
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal(2, await result.GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
    }

    [Fact]
    public async Task RateLimit_ThreePerMinute_RunSpreadOverFakeMinutesNotRealOnes()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask limited = app.Task("tasks.limited", (int i) => i, new TaskOptions { RateLimit = "1/m" });
        await using var harness = new CeleriacTestHarness(app);
        await harness.Ready.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        DateTimeOffset start = harness.Time.GetUtcNow();
        var clock = Stopwatch.StartNew();

        for (int i = 0; i < 3; i++)
        {
            await limited.DelayAsync(i);
        }

        Assert.True(await harness.IdleAsync(Ct));
        Assert.Equal(3, harness.Succeeded.Snapshot().Count);
        HarnessTask[] runs = [.. harness.Received.Snapshot().OrderBy(r => r.At)];
        Assert.True(runs[2].At - runs[0].At >= TimeSpan.FromMinutes(1.9), $"runs at {string.Join(", ", runs.Select(r => (r.At - start).ToString()))}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed} of real time");
    }

    [Fact]
    public async Task Revoked_TaskRevokedBeforeItsETA_IsSeenAndNeverRuns()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask later = app.Task("tasks.later", () => "ran");
        await using var harness = new CeleriacTestHarness(app) { AutoAdvance = false };
        await harness.Ready.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        AsyncResult result = await later.ApplyAsync(options: new ApplyOptions { Countdown = TimeSpan.FromMinutes(1) }, ct: Ct);
        Assert.True(await harness.Sent.Any(later, ct: Ct));
        Assert.True(await Poll.UntilAsync(() => harness.Worker.GetRequests(RequestState.Scheduled).Any(r => r.Id == result.Id), TimeSpan.FromSeconds(10)));
        await app.RevokeAsync([result.Id], Ct);
        Assert.True(await Poll.UntilAsync(() => harness.Worker.Revoked.Contains(result.Id), TimeSpan.FromSeconds(10)));
        await harness.AdvanceAsync(TimeSpan.FromMinutes(1), Ct);

        Assert.True(await harness.Revoked.Any(t => t.TaskId == result.Id, Ct));
        Assert.Empty(harness.Received.Snapshot());
    }

    [Fact]
    public async Task Chain_WithACountdownStep_RunsThroughInOrderOnFakeTime()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        CeleriacTask mul = app.Task("tasks.mul", (int x, int y) => x * y);
        await using var harness = new CeleriacTestHarness(app);

        AsyncResult result = await app.ApplyAsync(add.S(2, 3) | mul.S(10).SetCountdown(TimeSpan.FromHours(2)) | add.S(1), ct: Ct);

        Assert.True(await harness.Succeeded.Any(t => t.TaskId == result.Id, Ct));
        Assert.Equal(51, await result.GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(["tasks.add", "tasks.mul", "tasks.add"], harness.Received.Snapshot().Select(r => r.TaskName));
        Assert.Equal(3, harness.Sent.Snapshot().Count);
    }

    [Fact]
    public async Task GroupAndChord_RunThroughTheHarness()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask square = app.Task("tasks.square", (int x) => x * x);
        CeleriacTask sum = app.Task("tasks.sum", (int[] xs) => xs.Sum());
        await using var harness = new CeleriacTestHarness(app);

        AsyncResult group = await app.ApplyAsync(global::Celeriac.Canvas.Group(square.S(1), square.S(2), square.S(3)), ct: Ct);
        AsyncResult chord = await app.ApplyAsync(global::Celeriac.Canvas.Chord([square.S(4), square.S(5)], sum.S()), ct: Ct);

        Assert.True(await harness.Succeeded.Any(sum, t => t.Result<int>() == 41, Ct));
        Assert.Equal([1, 4, 9], await group.GetAsync<List<int>>(TimeSpan.FromSeconds(10), Ct) ?? []);
        Assert.Equal(41, await chord.GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(5, harness.Succeeded.Snapshot().Count(t => t.TaskName == "tasks.square"));
    }

    [Fact]
    public async Task Select_YieldsEachMatchThenEndsWhenInactive()
    {
        await using CeleriacApp app = NewApp();
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        await using var harness = new CeleriacTestHarness(app) { InactivityTimeout = TimeSpan.FromMilliseconds(200) };
        for (int i = 0; i < 5; i++)
        {
            await add.DelayAsync(i, 1);
        }

        var results = new List<int>();
        await foreach (HarnessTask t in harness.Succeeded.Select(t => t.TaskName == "tasks.add", Ct))
        {
            results.Add(t.Result<int>());
        }

        Assert.Equal([1, 2, 3, 4, 5], results.Order());
    }

    [Fact]
    public async Task Harness_ReplacesTheAppsUrls_TwoHarnessesDoNotShareTasks()
    {
        await using CeleriacApp first = NewApp();
        await using CeleriacApp second = NewApp();
        CeleriacTask one = first.Task("tasks.same", () => 1);
        second.Task("tasks.same", () => 2);
        await using var a = new CeleriacTestHarness(first);
        await using var b = new CeleriacTestHarness(second) { InactivityTimeout = TimeSpan.FromMilliseconds(200) };

        await one.DelayAsync();

        Assert.True(await a.Succeeded.Any(one, t => t.Result<int>() == 1, Ct));
        Assert.False(await b.Received.Any(ct: Ct));
        Assert.StartsWith("celeriac-harness://", first.Options.BrokerUrl, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Harness_CreatedAfterTheAppsFirstSend_ClearError()
    {
        await using CeleriacApp app = RunningWorker.NewApp();
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        await add.DelayAsync(1, 2);

        InvalidOperationException error = Assert.Throws<InvalidOperationException>(() => new CeleriacTestHarness(app));

        Assert.Contains("before the app's first send", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TasksOnOtherQueues_OwnQueueAndRoute_RunToo()
    {
        await using CeleriacApp app = NewApp();
        app.Options.TaskRoutes["reports.*"] = "reports";
        CeleriacTask mail = app.Task("mail.send", (string to) => "sent to " + to, new TaskOptions { Queue = "emails" });
        CeleriacTask daily = app.Task("reports.daily", () => "report");
        await using var harness = new CeleriacTestHarness(app);

        await mail.DelayAsync("ada@example.org");
        await daily.DelayAsync();

        Assert.True(await harness.Succeeded.Any(mail, t => t.Result<string>() == "sent to ada@example.org", Ct));
        Assert.True(await harness.Succeeded.Any(daily, ct: Ct));
        Assert.Equal(["emails", "reports"], harness.Sent.Snapshot().Select(s => s.Queue).Order());
    }
}
