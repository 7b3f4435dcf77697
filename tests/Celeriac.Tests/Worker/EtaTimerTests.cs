using Celeriac.Tests.Support;
using Celeriac.Worker;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Worker;

/// <summary>A task never starts before its ETA by the worker's clock, even when timers fire early.</summary>
public sealed class EtaTimerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EtaTask_TimerFiresFiveMillisecondsEarly_TaskStartsNoEarlierThanItsEta()
    {
        var fake = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-04T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var time = new EarlyTimers(fake, TimeSpan.FromMilliseconds(5));
        CeleriacApp app = RunningWorker.NewApp(o => o.TimeProvider = time);
        var ranAt = new TaskCompletionSource<DateTimeOffset>(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task("t.at", () =>
        {
            ranAt.TrySetResult(time.GetUtcNow());
            return 1;
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        DateTimeOffset eta = fake.GetUtcNow().AddSeconds(1);
        await app.SendTaskAsync("t.at", options: new ApplyOptions { Eta = eta }, ct: Ct);
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            while (worker.Worker.GetRequests(RequestState.Scheduled).Count == 0)
            {
                await Task.Delay(5, wait.Token);
            }
        }

        // Up to 10 ms before the ETA in one step (the early timer has fired by eta - 5 ms), then a millisecond at a
        // time with room for the worker to act between steps: a task let go by the early timer would start at once.
        fake.Advance(TimeSpan.FromMilliseconds(990));
        for (int step = 0; step < 200 && !ranAt.Task.IsCompleted; step++)
        {
            await Task.Delay(5, Ct);
            fake.Advance(TimeSpan.FromMilliseconds(1));
        }

        DateTimeOffset started = await ranAt.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.True(started >= eta, $"started {(eta - started).TotalMilliseconds} ms before its ETA");
    }

    [Fact]
    public async Task EtaTask_EverySlotBusy_IsScheduledAsTheWorkerTakesIt()
    {
        // Celery's consumer schedules an ETA task on receipt, so `inspect scheduled` lists it at once: it must not
        // wait, reserved, for a slot to decode it.
        var fake = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-04T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.TimeProvider = fake;
            o.Concurrency = 1;
        });
        var holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task("t.hold", async () =>
        {
            holding.TrySetResult();
            await release.Task;
            return 1;
        });
        app.Task("t.at", () => 2);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        try
        {
            await app.SendTaskAsync("t.hold", ct: Ct);
            await holding.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);

            AsyncResult later = await app.SendTaskAsync("t.at", options: new ApplyOptions { Eta = fake.GetUtcNow().AddMinutes(1) }, ct: Ct);
            Assert.True(await Poll.UntilAsync(() => worker.Worker.GetRequests(RequestState.Scheduled).Any(r => r.Id == later.Id), TimeSpan.FromSeconds(10)),
                "the ETA task was not scheduled while the only slot was busy");
            Assert.Equal(["t.hold"], worker.Worker.GetRequests(RequestState.Active).Select(r => r.Name));
        }
        finally
        {
            release.TrySetResult();
        }
    }

    /// <summary>Fake time whose timers fire <c>early</c> before they are due, as coarse OS timers may.</summary>
    private sealed class EarlyTimers(FakeTimeProvider fake, TimeSpan early) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => fake.GetUtcNow();

        public override long GetTimestamp() => fake.GetTimestamp();

        public override long TimestampFrequency => fake.TimestampFrequency;

        public override TimeZoneInfo LocalTimeZone => fake.LocalTimeZone;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            fake.CreateTimer(callback, state, dueTime == Timeout.InfiniteTimeSpan || dueTime <= early ? dueTime : dueTime - early, period);
    }
}
