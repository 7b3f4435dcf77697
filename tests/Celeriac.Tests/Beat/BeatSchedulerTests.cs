using System.Collections.Concurrent;
using System.Text.Json;
using Celeriac.Beat;
using Celeriac.Tests.Support;
using Celeriac.Transport;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Beat;

/// <summary>
/// The scheduler on a fake clock and an in-memory store and broker: runs sent on time and once, the lease that makes
/// one beat of several send, take-over when the holder dies, the catch-up policies, and store edits while it runs.
/// </summary>
public sealed class BeatSchedulerTests
{
    private static readonly DateTimeOffset s_start = new(2026, 12, 4, 10, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class Rig(FakeTimeProvider time, CeleriacApp app, IBeatStore store) : IAsyncDisposable
    {
        private readonly List<(CeleriacBeat Beat, CancellationTokenSource Stop, Task Run)> _beats = [];

        public FakeTimeProvider Time => time;

        public CeleriacApp App => app;

        public IBeatStore Store => store;

        public ConcurrentQueue<BeatRunEventArgs> Runs { get; } = new();

        /// <summary>Starts a beat and waits (on the real clock) until its entries are in the store, so that they start at this fake time.</summary>
        public async Task<CeleriacBeat> StartAsync(IBeatStore? on = null, params BeatEntry[] entries)
        {
            var beat = new CeleriacBeat(app, entries, on ?? store);
            beat.Sent += (_, e) => Runs.Enqueue(e);
            var stop = new CancellationTokenSource();
            _beats.Add((beat, stop, Task.Run(() => beat.RunAsync(stop.Token))));
            string[] names = [.. beat.DefinedEntries().Select(e => e.Name)];
            Assert.True(await Poll.UntilAsync(async () => (await store.LoadAsync(Ct)).Select(e => e.Name).Intersect(names).Count() == names.Length, TimeSpan.FromSeconds(10)), "the beat never saved its entries");
            return beat;
        }

        public async Task StopAsync(CeleriacBeat beat)
        {
            (CeleriacBeat _, CancellationTokenSource stop, Task run) = _beats.Single(b => b.Beat == beat);
            await stop.CancelAsync();
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }

        /// <summary>Moves the clock on in steps, giving the beats real time to act at each.</summary>
        public async Task AdvanceAsync(TimeSpan total, TimeSpan? step = null)
        {
            TimeSpan by = step ?? TimeSpan.FromMilliseconds(250);
            for (TimeSpan done = TimeSpan.Zero; done < total; done += by)
            {
                time.Advance(by);
                await Task.Delay(15, Ct);
            }
        }

        public DateTimeOffset[] DueTimes(string entry) => [.. Runs.Where(r => r.Entry == entry).Select(r => r.DueAt).Order()];

        public async ValueTask DisposeAsync()
        {
            foreach ((CeleriacBeat _, CancellationTokenSource stop, Task run) in _beats)
            {
                await stop.CancelAsync();
                await run.WaitAsync(TimeSpan.FromSeconds(10));
                stop.Dispose();
            }

            await app.DisposeAsync();
        }
    }

    private static Rig NewRig(Action<CeleriacOptions>? configure = null)
    {
        var time = new FakeTimeProvider(s_start);
        CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.TimeProvider = time;
            o.BeatLeaseTime = TimeSpan.FromSeconds(3);
            o.BeatMaxInterval = TimeSpan.FromSeconds(5);
            configure?.Invoke(o);
        });
        return new Rig(time, app, new MemoryBeatStore(time));
    }

    private static BeatEntry Every(string name, double seconds, BeatCatchUp catchUp = BeatCatchUp.Skip) =>
        new() { Name = name, Task = "tasks.tick", Schedule = new IntervalSchedule(TimeSpan.FromSeconds(seconds)), CatchUp = catchUp };

    [Fact]
    public async Task IntervalEntry_SentAtEachDueTime_AsACeleryMessageWithItsEntryName()
    {
        await using Rig rig = NewRig();
        BeatEntry entry = Every("tick", 10) with
        {
            Args = JsonDocument.Parse("[1, \"two\"]").RootElement,
            Queue = "periodic",
            Priority = 3,
            Expires = TimeSpan.FromSeconds(30),
        };
        await rig.StartAsync(null, entry);

        await rig.AdvanceAsync(TimeSpan.FromSeconds(31));

        Assert.Equal([s_start.AddSeconds(10), s_start.AddSeconds(20), s_start.AddSeconds(30)], rig.DueTimes("tick"));
        Assert.Equal(3, await rig.App.Transport.GetQueueLengthAsync("periodic", Ct));
        TransportMessage message = await FirstMessageAsync(rig.App.Transport, "periodic");
        Assert.Equal(("tasks.tick", "tick"), ((string)message.Headers["task"]!, (string)message.Headers["periodic_task_name"]!));
        Assert.Equal(3, message.Priority);
        Assert.True(Celeriac.Protocol.CeleryJson.TryParseIso((string)message.Headers["expires"]!, out DateTimeOffset expires));
        Assert.Equal(s_start.AddSeconds(40), expires);
        Assert.Equal("[1,\"two\"]", JsonDocument.Parse(message.Body).RootElement[0].GetRawText().Replace(" ", "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ThreeBeatsOnOneStore_OneSends_EachRunOnce()
    {
        await using Rig rig = NewRig();
        BeatEntry entry = Every("each-second", 1);
        CeleriacBeat[] beats = [await rig.StartAsync(null, entry), await rig.StartAsync(null, entry), await rig.StartAsync(null, entry)];

        await rig.AdvanceAsync(TimeSpan.FromSeconds(20));

        DateTimeOffset[] due = rig.DueTimes("each-second");
        Assert.Equal(due.Distinct().Count(), due.Length);
        Assert.Equal(Enumerable.Range(1, 20).Select(i => s_start.AddSeconds(i)), due);
        Assert.Single(beats, b => b.IsLeader);
    }

    [Fact]
    public async Task HolderDies_AnotherTakesOverWithinTheLease_NoRunTwiceAndAtMostALeaseOfRunsLost()
    {
        await using Rig rig = NewRig();
        BeatEntry entry = Every("each-second", 1);
        var frozen = new FreezableStore(rig.Store);
        CeleriacBeat first = await rig.StartAsync(frozen, entry);
        await rig.AdvanceAsync(TimeSpan.FromSeconds(2));
        Assert.True(first.IsLeader);
        CeleriacBeat second = await rig.StartAsync(null, entry);
        await rig.AdvanceAsync(TimeSpan.FromSeconds(3));
        Assert.False(second.IsLeader);

        frozen.Freeze(); // as a process killed with -9: no release, no further call
        DateTimeOffset diedAt = rig.Time.GetUtcNow();
        await rig.AdvanceAsync(TimeSpan.FromSeconds(10));

        Assert.True(second.IsLeader);
        DateTimeOffset[] due = rig.DueTimes("each-second");
        Assert.Equal(due.Distinct().Count(), due.Length);
        DateTimeOffset[] gap = [.. Enumerable.Range(1, 15).Select(i => s_start.AddSeconds(i)).Except(due)];
        Assert.All(gap, g => Assert.InRange(g, diedAt, diedAt + rig.App.Options.BeatLeaseTime + TimeSpan.FromSeconds(1)));
        Assert.Contains(s_start.AddSeconds(15), due);
    }

    [Theory]
    [InlineData(BeatCatchUp.Skip, 0)]
    [InlineData(BeatCatchUp.RunOnce, 1)]
    [InlineData(BeatCatchUp.RunAll, 4)]
    public async Task BeatAwayFortySeconds_MissedRuns_FollowTheCatchUpPolicy(BeatCatchUp policy, int sentForTheGap)
    {
        await using Rig rig = NewRig();
        BeatEntry entry = Every("ten", 10, policy);
        CeleriacBeat first = await rig.StartAsync(null, entry);
        await rig.AdvanceAsync(TimeSpan.FromSeconds(25));
        await rig.StopAsync(first);
        DateTimeOffset[] before = rig.DueTimes("ten");

        // Away until 67 s, in one jump as a restart after downtime sees it: 30, 40, 50 and 60 fell due meanwhile, and
        // even the latest is later than the misfire grace.
        rig.Time.Advance(s_start.AddSeconds(67) - rig.Time.GetUtcNow());
        await rig.StartAsync(null, entry);
        await rig.AdvanceAsync(TimeSpan.FromSeconds(5));

        DateTimeOffset[] due = rig.DueTimes("ten");
        Assert.Equal([s_start.AddSeconds(10), s_start.AddSeconds(20)], before);
        Assert.Equal(due.Distinct().Count(), due.Length);
        Assert.Equal(sentForTheGap, due.Count(d => d > s_start.AddSeconds(25) && d <= s_start.AddSeconds(67)));
        Assert.Contains(s_start.AddSeconds(70), due); // and on it goes
    }

    [Fact]
    public async Task StoreEditedWhileBeatRuns_AddedAndDisabledEntries_TakeEffectWithinMaxInterval()
    {
        await using Rig rig = NewRig();
        await rig.StartAsync(null, Every("first", 1));
        await rig.AdvanceAsync(TimeSpan.FromSeconds(2));

        await rig.Store.SaveAsync(Every("added", 2) with { LastRunAt = rig.Time.GetUtcNow() }, Ct);
        await rig.Store.SetEnabledAsync("first", false, Ct);
        DateTimeOffset edited = rig.Time.GetUtcNow();
        await rig.AdvanceAsync(TimeSpan.FromSeconds(12));

        DateTimeOffset maxInterval = edited + rig.App.Options.BeatMaxInterval;
        Assert.All(rig.DueTimes("first"), d => Assert.True(d <= maxInterval, $"first ran at {d:O} after it was disabled at {edited:O}"));
        Assert.True(rig.DueTimes("added").Length >= 4);
        Assert.True(rig.DueTimes("added")[0] <= maxInterval);
    }

    [Fact]
    public async Task ConfiguredEntries_ABadOne_IsLoggedAndTheOthersRun()
    {
        var logs = new CollectingLoggerFactory();
        await using Rig rig = NewRig(o =>
        {
            o.LoggerFactory = logs;
            o.BeatSchedule["good"] = JsonDocument.Parse("""{"task": "tasks.tick", "schedule": 2.0, "args": [1]}""").RootElement;
            o.BeatSchedule["bad-cron"] = JsonDocument.Parse("""{"task": "tasks.tick", "schedule": {"type": "interval", "seconds": 0}}""").RootElement;
            o.BeatSchedule["bad-zone"] = JsonDocument.Parse("""{"task": "tasks.tick", "schedule": 1, "timezone": "Mars/Olympus"}""").RootElement;
        });
        await rig.StartAsync();

        await rig.AdvanceAsync(TimeSpan.FromSeconds(5));

        Assert.Equal([s_start.AddSeconds(2), s_start.AddSeconds(4)], rig.DueTimes("good"));
        Assert.Contains(logs.Entries, l => l.Message.Contains("Beat entry 'bad-cron'", StringComparison.Ordinal) && l.Message.Contains("more than 0 seconds", StringComparison.Ordinal));
        Assert.Contains(logs.Entries, l => l.Message.Contains("Beat entry 'bad-zone'", StringComparison.Ordinal) && l.Message.Contains("Mars/Olympus", StringComparison.Ordinal));
        Assert.Single(logs.Entries, l => l.Message.Contains("'bad-cron'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ClockedEntry_RunsOnceAtItsTime()
    {
        await using Rig rig = NewRig();
        await rig.StartAsync(null, new BeatEntry { Name = "once", Task = "tasks.tick", Schedule = new ClockedSchedule(s_start.AddSeconds(3)) });

        await rig.AdvanceAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([s_start.AddSeconds(3)], rig.DueTimes("once"));
    }

    private static async Task<TransportMessage> FirstMessageAsync(ITransport transport, string queue)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        await foreach (Delivery d in transport.ConsumeAsync(new ConsumeOptions { Queues = [queue], Prefetch = 1 }, timeout.Token))
        {
            return d.Message!;
        }

        throw new TimeoutException("no message");
    }

    /// <summary>A store whose caller dies: after <see cref="Freeze"/> every call hangs, as in a killed process.</summary>
    private sealed class FreezableStore(IBeatStore inner) : IBeatStore
    {
        private readonly TaskCompletionSource _never = new();
        private volatile bool _frozen;

        public void Freeze() => _frozen = true;

        public ValueTask<IReadOnlyList<BeatEntry>> LoadAsync(CancellationToken ct = default) => _frozen ? Hang<IReadOnlyList<BeatEntry>>(ct) : inner.LoadAsync(ct);

        public ValueTask SaveAsync(BeatEntry entry, CancellationToken ct = default) => _frozen ? new(_never.Task.WaitAsync(ct)) : inner.SaveAsync(entry, ct);

        public ValueTask<bool> RemoveAsync(string name, CancellationToken ct = default) => _frozen ? Hang<bool>(ct) : inner.RemoveAsync(name, ct);

        public ValueTask<bool> SetEnabledAsync(string name, bool enabled, CancellationToken ct = default) => _frozen ? Hang<bool>(ct) : inner.SetEnabledAsync(name, enabled, ct);

        public ValueTask<bool> TryHoldLeaseAsync(string holder, TimeSpan duration, CancellationToken ct = default) => _frozen ? Hang<bool>(ct) : inner.TryHoldLeaseAsync(holder, duration, ct);

        public ValueTask ReleaseLeaseAsync(string holder, CancellationToken ct = default) => _frozen ? ValueTask.CompletedTask : inner.ReleaseLeaseAsync(holder, ct);

        public ValueTask<bool> TryRecordRunAsync(string holder, string name, DateTimeOffset? expectedLastRun, DateTimeOffset runAt, CancellationToken ct = default) =>
            _frozen ? Hang<bool>(ct) : inner.TryRecordRunAsync(holder, name, expectedLastRun, runAt, ct);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private async ValueTask<T> Hang<T>(CancellationToken ct)
        {
            await _never.Task.WaitAsync(ct);
            return default!;
        }
    }
}
