using System.Text.Json;
using Celeriac.Beat;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Conformance;

/// <summary>
/// What every <see cref="IBeatStore"/> must do, tested the same way on each, with <see cref="MemoryBeatStore"/>'s
/// semantics as the reference. A subclass makes stores on a fresh store per test; each store it makes is another
/// process's view of it (its own connection) where the store has processes.
/// </summary>
public abstract class BeatStoreConformanceTests : IAsyncDisposable
{
    private static readonly DateTimeOffset s_start = new(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);
    private readonly List<IBeatStore> _stores = [];

    /// <summary>The clock stores are given (leases expire by it, unless <see cref="LeaseOnServerClock"/>).</summary>
    protected FakeTimeProvider Time { get; } = new(s_start);

    /// <summary>Creates a store on this test's store, as another process would open it.</summary>
    protected abstract IBeatStore CreateStore(TimeProvider time);

    /// <summary>Whether leases expire by the server's own clock (Redis's PX), so that tests wait in real time.</summary>
    protected virtual bool LeaseOnServerClock => false;

    /// <summary>A lease short enough to wait out in real time on a server clock.</summary>
    private static readonly TimeSpan s_shortLease = TimeSpan.FromMilliseconds(300);

    private static readonly TimeSpan s_longLease = TimeSpan.FromMinutes(5);

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected IBeatStore NewStore()
    {
        IBeatStore store = CreateStore(Time);
        lock (_stores)
        {
            _stores.Add(store);
        }

        return store;
    }

    /// <summary>Lets a lease of <paramref name="duration"/> taken just now run out.</summary>
    private async Task LetExpireAsync(TimeSpan duration)
    {
        if (LeaseOnServerClock)
        {
            await Task.Delay(duration + TimeSpan.FromMilliseconds(250), Ct);
        }
        else
        {
            Time.Advance(duration + TimeSpan.FromTicks(1));
        }
    }

    protected static BeatEntry Interval(string name, double seconds = 10) => new()
    {
        Name = name,
        Task = "tasks.add",
        Schedule = new IntervalSchedule(TimeSpan.FromSeconds(seconds)),
    };

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    private static async Task<BeatEntry> OnlyAsync(IBeatStore store, string name) =>
        Assert.Single(await store.LoadAsync(Ct), e => e.Name == name);

    [Fact]
    public async Task SaveAsync_ThenLoad_RoundTripsEveryField()
    {
        IBeatStore store = NewStore();
        var full = new BeatEntry
        {
            Name = "b-full ünïcode/name",
            Task = "proj.tasks.report",
            Schedule = new IntervalSchedule(TimeSpan.FromSeconds(2.5)),
            Args = Json("""[1, "x", {"a": null}, 2.5]"""),
            Kwargs = Json("""{"k": [1, 2], "s": "é"}"""),
            Queue = "reports",
            Exchange = "ex",
            RoutingKey = "rk.1",
            Priority = 7,
            Headers = new Dictionary<string, string>(StringComparer.Ordinal) { ["h1"] = "v1", ["h2"] = "v2" },
            Expires = TimeSpan.FromSeconds(90.5),
            TimeZone = "Europe/Paris",
            CatchUp = BeatCatchUp.RunOnce,
            Enabled = false,

            // Sub-millisecond ticks and a non-UTC offset: the instant must survive, to the tick.
            LastRunAt = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.FromHours(2)).AddTicks(1234567),
            TotalRunCount = 41,
        };
        var bare = new BeatEntry
        {
            Name = "a-bare",
            Task = "proj.tasks.once",
            Schedule = new ClockedSchedule(new DateTimeOffset(2026, 6, 7, 8, 9, 10, TimeSpan.Zero)),
        };

        await store.SaveAsync(full, Ct);
        await store.SaveAsync(bare, Ct);

        // Read back through another store (another process's view), in name order.
        IReadOnlyList<BeatEntry> loaded = await NewStore().LoadAsync(Ct);
        Assert.Equal(["a-bare", "b-full ünïcode/name"], loaded.Select(e => e.Name));

        BeatEntry a = loaded[0];
        Assert.Equal("proj.tasks.once", a.Task);
        Assert.Equal(new DateTimeOffset(2026, 6, 7, 8, 9, 10, TimeSpan.Zero), Assert.IsType<ClockedSchedule>(a.Schedule).At);
        Assert.Equal("[]", a.Args.GetRawText());
        Assert.Equal("{}", a.Kwargs.GetRawText());
        Assert.Null(a.Queue);
        Assert.Null(a.Exchange);
        Assert.Null(a.RoutingKey);
        Assert.Null(a.Priority);
        Assert.Null(a.Headers);
        Assert.Null(a.Expires);
        Assert.Null(a.TimeZone);
        Assert.Equal(BeatCatchUp.Skip, a.CatchUp);
        Assert.True(a.Enabled);
        Assert.Null(a.LastRunAt);
        Assert.Equal(0, a.TotalRunCount);

        BeatEntry b = loaded[1];
        Assert.Equal(full.Task, b.Task);
        Assert.Equal(TimeSpan.FromSeconds(2.5), Assert.IsType<IntervalSchedule>(b.Schedule).Every);
        Assert.True(JsonElement.DeepEquals(full.Args, b.Args), b.Args.GetRawText());
        Assert.True(JsonElement.DeepEquals(full.Kwargs, b.Kwargs), b.Kwargs.GetRawText());
        Assert.Equal("reports", b.Queue);
        Assert.Equal("ex", b.Exchange);
        Assert.Equal("rk.1", b.RoutingKey);
        Assert.Equal(7, b.Priority);
        Assert.Equal(full.Headers.OrderBy(h => h.Key), b.Headers!.OrderBy(h => h.Key));
        Assert.Equal(TimeSpan.FromSeconds(90.5), b.Expires);
        Assert.Equal("Europe/Paris", b.TimeZone);
        Assert.Equal(BeatCatchUp.RunOnce, b.CatchUp);
        Assert.False(b.Enabled);
        Assert.Equal(full.LastRunAt, b.LastRunAt);
        Assert.Equal(full.LastRunAt.Value.UtcTicks, b.LastRunAt!.Value.UtcTicks);
        Assert.Equal(41, b.TotalRunCount);
        Assert.Equal(full.DefinitionJson(), b.DefinitionJson());
    }

    [Fact]
    public async Task SaveAsync_ExistingEntry_ChangesDefinitionOnly_KeepsEnabledLastRunAndCount()
    {
        IBeatStore store = NewStore();
        Assert.True(await store.TryHoldLeaseAsync("beat-1", s_longLease, Ct));
        await store.SaveAsync(Interval("e", 10), Ct);
        DateTimeOffset run = s_start.AddTicks(7);
        Assert.True(await store.TryRecordRunAsync("beat-1", "e", null, run, Ct));
        Assert.True(await store.SetEnabledAsync("e", false, Ct));

        // The same code starting again: enabled, never run, new interval and queue.
        await NewStore().SaveAsync(Interval("e", 30) with { Queue = "q2", Enabled = true, LastRunAt = null, TotalRunCount = 0 }, Ct);

        BeatEntry e = await OnlyAsync(store, "e");
        Assert.Equal(TimeSpan.FromSeconds(30), Assert.IsType<IntervalSchedule>(e.Schedule).Every);
        Assert.Equal("q2", e.Queue);
        Assert.False(e.Enabled);
        Assert.Equal(run, e.LastRunAt);
        Assert.Equal(1, e.TotalRunCount);
    }

    [Fact]
    public async Task SaveAsync_NewEntry_StartsWithItsOwnState()
    {
        IBeatStore store = NewStore();
        DateTimeOffset added = s_start.AddMinutes(-3);
        await store.SaveAsync(Interval("n") with { Enabled = false, LastRunAt = added, TotalRunCount = 5 }, Ct);

        BeatEntry n = await OnlyAsync(NewStore(), "n");
        Assert.False(n.Enabled);
        Assert.Equal(added, n.LastRunAt);
        Assert.Equal(5, n.TotalRunCount);
    }

    [Fact]
    public async Task RemoveAsync_RemovesOnce()
    {
        IBeatStore store = NewStore();
        await store.SaveAsync(Interval("gone"), Ct);
        await store.SaveAsync(Interval("kept"), Ct);

        Assert.True(await store.RemoveAsync("gone", Ct));
        Assert.False(await NewStore().RemoveAsync("gone", Ct));
        Assert.False(await store.RemoveAsync("never", Ct));
        Assert.Equal(["kept"], (await NewStore().LoadAsync(Ct)).Select(e => e.Name));
    }

    [Fact]
    public async Task RemoveAsync_ThenSaveAgain_StartsAfresh()
    {
        IBeatStore store = NewStore();
        Assert.True(await store.TryHoldLeaseAsync("beat-1", s_longLease, Ct));
        await store.SaveAsync(Interval("e"), Ct);
        Assert.True(await store.TryRecordRunAsync("beat-1", "e", null, s_start, Ct));
        Assert.True(await store.SetEnabledAsync("e", false, Ct));
        Assert.True(await store.RemoveAsync("e", Ct));

        await store.SaveAsync(Interval("e"), Ct);

        BeatEntry e = await OnlyAsync(NewStore(), "e");
        Assert.True(e.Enabled);
        Assert.Null(e.LastRunAt);
        Assert.Equal(0, e.TotalRunCount);
    }

    [Fact]
    public async Task SetEnabledAsync_DisablesAndEnables_FalseForUnknown()
    {
        IBeatStore store = NewStore();
        await store.SaveAsync(Interval("e"), Ct);

        Assert.True(await store.SetEnabledAsync("e", false, Ct));
        Assert.False((await OnlyAsync(NewStore(), "e")).Enabled);
        Assert.True(await NewStore().SetEnabledAsync("e", true, Ct));
        Assert.True((await OnlyAsync(store, "e")).Enabled);

        Assert.False(await store.SetEnabledAsync("unknown", false, Ct));
        Assert.Equal(["e"], (await store.LoadAsync(Ct)).Select(x => x.Name));
    }

    [Fact]
    public async Task Lease_ExclusiveWhileHeld_RenewableByItsHolder()
    {
        IBeatStore a = NewStore();
        IBeatStore b = NewStore();

        Assert.True(await a.TryHoldLeaseAsync("beat-a", s_longLease, Ct));
        Assert.False(await b.TryHoldLeaseAsync("beat-b", s_longLease, Ct));
        Assert.True(await a.TryHoldLeaseAsync("beat-a", s_longLease, Ct));

        // The holder is the name, not the connection: another connection of the same beat renews too.
        Assert.True(await b.TryHoldLeaseAsync("beat-a", s_longLease, Ct));
        Assert.False(await b.TryHoldLeaseAsync("beat-b", s_longLease, Ct));
    }

    [Fact]
    public async Task Lease_RenewedBeforeExpiry_StaysWithItsHolder()
    {
        IBeatStore a = NewStore();
        IBeatStore b = NewStore();
        Assert.True(await a.TryHoldLeaseAsync("beat-a", s_shortLease, Ct));

        // Renewed with a long lease: the short one's end no longer frees it.
        Assert.True(await a.TryHoldLeaseAsync("beat-a", s_longLease, Ct));
        await LetExpireAsync(s_shortLease);

        Assert.False(await b.TryHoldLeaseAsync("beat-b", s_longLease, Ct));
    }

    [Fact]
    public async Task Lease_AfterExpiry_TakenByAnother_AndLostByTheOld()
    {
        IBeatStore a = NewStore();
        IBeatStore b = NewStore();
        Assert.True(await a.TryHoldLeaseAsync("beat-a", s_shortLease, Ct));
        Assert.False(await b.TryHoldLeaseAsync("beat-b", s_shortLease, Ct));

        bool taken = false;
        if (LeaseOnServerClock)
        {
            // The server's clock decides; poll (bounded) until the lease is free, and the first success must be b's.
            long deadline = Environment.TickCount64 + 5000;
            while (!taken && Environment.TickCount64 < deadline)
            {
                taken = await b.TryHoldLeaseAsync("beat-b", s_longLease, Ct);
                if (!taken)
                {
                    await Task.Delay(25, Ct);
                }
            }
        }
        else
        {
            Time.Advance(s_shortLease - TimeSpan.FromTicks(1));
            Assert.False(await b.TryHoldLeaseAsync("beat-b", s_longLease, Ct));
            Time.Advance(TimeSpan.FromTicks(1));
            taken = await b.TryHoldLeaseAsync("beat-b", s_longLease, Ct);
        }

        Assert.True(taken, "another beat never took the expired lease");
        Assert.False(await a.TryHoldLeaseAsync("beat-a", s_longLease, Ct));
    }

    [Fact]
    public async Task ReleaseLeaseAsync_ByHolder_FreesAtOnce_ByAnother_DoesNothing()
    {
        IBeatStore a = NewStore();
        IBeatStore b = NewStore();
        Assert.True(await a.TryHoldLeaseAsync("beat-a", s_longLease, Ct));

        await b.ReleaseLeaseAsync("beat-b", Ct);
        Assert.False(await b.TryHoldLeaseAsync("beat-b", s_longLease, Ct));

        await a.ReleaseLeaseAsync("beat-a", Ct);
        Assert.True(await b.TryHoldLeaseAsync("beat-b", s_longLease, Ct));

        // A released holder holds nothing: it can neither record nor take the lease back while b holds it.
        await a.SaveAsync(Interval("e"), Ct);
        Assert.False(await a.TryRecordRunAsync("beat-a", "e", null, s_start, Ct));
        Assert.False(await a.TryHoldLeaseAsync("beat-a", s_longLease, Ct));

        // Releasing a lease one does not hold is harmless.
        await a.ReleaseLeaseAsync("beat-a", Ct);
        Assert.True(await b.TryRecordRunAsync("beat-b", "e", null, s_start, Ct));
    }

    [Fact]
    public async Task Lease_ContendedWhenFree_ExactlyOneTakesIt()
    {
        IBeatStore[] stores = [NewStore(), NewStore(), NewStore()];
        for (int round = 0; round < 20; round++)
        {
            bool[] won = await RaceAsync(stores, (store, i) => store.TryHoldLeaseAsync("beat-" + i, s_longLease, Ct).AsTask());
            int winner = Assert.Single(Enumerable.Range(0, won.Length), i => won[i]);
            await stores[winner].ReleaseLeaseAsync("beat-" + winner, Ct);
        }
    }

    [Fact]
    public async Task TryRecordRunAsync_Holder_RecordsRunAndCount_AndLoadedLastRunIsTheNextExpected()
    {
        IBeatStore store = NewStore();
        await store.SaveAsync(Interval("e"), Ct);
        Assert.True(await store.TryHoldLeaseAsync("beat-1", s_longLease, Ct));

        DateTimeOffset first = s_start.AddTicks(12345);
        Assert.True(await store.TryRecordRunAsync("beat-1", "e", null, first, Ct));

        // What a (restarted) beat loads is what it compares with next.
        BeatEntry loaded = await OnlyAsync(NewStore(), "e");
        Assert.Equal(first, loaded.LastRunAt);
        Assert.Equal(1, loaded.TotalRunCount);

        DateTimeOffset second = first.AddSeconds(10).ToOffset(TimeSpan.FromHours(-5));
        Assert.True(await NewStore().TryRecordRunAsync("beat-1", "e", loaded.LastRunAt, second, Ct));
        BeatEntry after = await OnlyAsync(store, "e");
        Assert.Equal(second, after.LastRunAt);
        Assert.Equal(2, after.TotalRunCount);
    }

    [Fact]
    public async Task TryRecordRunAsync_NonHolder_Refused()
    {
        IBeatStore a = NewStore();
        IBeatStore b = NewStore();
        await a.SaveAsync(Interval("e"), Ct);

        // Nobody holds it.
        Assert.False(await a.TryRecordRunAsync("beat-a", "e", null, s_start, Ct));

        Assert.True(await a.TryHoldLeaseAsync("beat-a", s_longLease, Ct));
        Assert.False(await b.TryRecordRunAsync("beat-b", "e", null, s_start, Ct));

        BeatEntry e = await OnlyAsync(b, "e");
        Assert.Null(e.LastRunAt);
        Assert.Equal(0, e.TotalRunCount);
    }

    [Fact]
    public async Task TryRecordRunAsync_ExpiredHolder_Refused()
    {
        IBeatStore store = NewStore();
        await store.SaveAsync(Interval("e"), Ct);
        Assert.True(await store.TryHoldLeaseAsync("beat-1", s_shortLease, Ct));

        await LetExpireAsync(s_shortLease);

        // Expired but not yet taken by another: still no run.
        Assert.False(await store.TryRecordRunAsync("beat-1", "e", null, s_start, Ct));
        Assert.Equal(0, (await OnlyAsync(store, "e")).TotalRunCount);
    }

    [Fact]
    public async Task TryRecordRunAsync_StaleExpectedOrUnknownEntry_Refused()
    {
        IBeatStore store = NewStore();
        await store.SaveAsync(Interval("e"), Ct);
        Assert.True(await store.TryHoldLeaseAsync("beat-1", s_longLease, Ct));
        DateTimeOffset first = s_start;
        Assert.True(await store.TryRecordRunAsync("beat-1", "e", null, first, Ct));

        Assert.False(await store.TryRecordRunAsync("beat-1", "e", null, first.AddSeconds(10), Ct));
        Assert.False(await store.TryRecordRunAsync("beat-1", "e", first.AddTicks(-1), first.AddSeconds(10), Ct));
        Assert.False(await store.TryRecordRunAsync("beat-1", "unknown", null, first, Ct));

        BeatEntry e = await OnlyAsync(store, "e");
        Assert.Equal(first, e.LastRunAt);
        Assert.Equal(1, e.TotalRunCount);
        Assert.Equal(["e"], (await store.LoadAsync(Ct)).Select(x => x.Name));
    }

    [Fact]
    public async Task TryRecordRunAsync_ConcurrentCallersWithTheSameExpected_ExactlyOneWinsEachRound()
    {
        IBeatStore[] stores = [NewStore(), NewStore(), NewStore()];
        await stores[0].SaveAsync(Interval("e"), Ct);
        Assert.True(await stores[0].TryHoldLeaseAsync("beat-1", s_longLease, Ct));

        DateTimeOffset? expected = null;
        for (int round = 0; round < 50; round++)
        {
            DateTimeOffset? seen = expected;
            DateTimeOffset RunAt(int i) => s_start.AddSeconds(round).AddTicks(i + 1);
            bool[] won = await RaceAsync(stores, (store, i) => store.TryRecordRunAsync("beat-1", "e", seen, RunAt(i), Ct).AsTask());

            int winner = Assert.Single(Enumerable.Range(0, won.Length), i => won[i]);
            BeatEntry e = await OnlyAsync(stores[(round + 1) % stores.Length], "e");
            Assert.Equal(RunAt(winner), e.LastRunAt);
            Assert.Equal(round + 1, e.TotalRunCount);
            expected = e.LastRunAt;
        }
    }

    /// <summary>Starts one call per store at the same moment, each on a pool thread, and gives what each returned.</summary>
    private static async Task<bool[]> RaceAsync(IBeatStore[] stores, Func<IBeatStore, int, Task<bool>> call)
    {
        // A gate rather than a barrier: waiting callers block no pool thread (the pool may have only two).
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<bool>[] calls = [.. stores.Select(async (store, i) =>
        {
            await gate.Task;
            return await Task.Run(() => call(store, i), Ct);
        })];
        gate.SetResult();
        return await Task.WhenAll(calls);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (IBeatStore store in _stores)
        {
            await store.DisposeAsync();
        }

        await DisposeStoreAsync();
        GC.SuppressFinalize(this);
    }

    /// <summary>Deletes the test's store, after every store is disposed.</summary>
    protected virtual ValueTask DisposeStoreAsync() => ValueTask.CompletedTask;
}
