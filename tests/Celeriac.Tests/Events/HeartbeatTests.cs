using System.Collections.Concurrent;
using Celeriac.Events;
using Celeriac.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Events;

/// <summary>
/// A worker's heartbeats and a monitor's verdict, on fake clocks: the worker's (its heartbeat timer) and the monitor's
/// (when events are received, and what "now" is for liveness). The worker shows online; once its heartbeats stop (its
/// clock stands still, as a killed worker's would) the monitor shows it offline after twice its interval; a warm stop
/// shows it offline at once.
/// </summary>
public sealed class HeartbeatTests
{
    private static readonly DateTimeOffset s_start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Worker_OnlineThenHeartbeatsEveryTwoSeconds_OfflineWhenTheyStopForTwiceTheInterval_AndAtOnceOnWarmStop()
    {
        var workerTime = new FakeTimeProvider(s_start);
        var monitorTime = new FakeTimeProvider(s_start);
        string broker = "memory://heartbeat-" + Guid.NewGuid().ToString("N");
        CeleriacApp workerApp = RunningWorker.NewApp(o =>
        {
            o.BrokerUrl = broker;
            o.NodeName = "beating@test";
            o.TimeProvider = workerTime;
        });
        await using var monitor = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker, TimeProvider = monitorTime });
        var state = new ClusterState(monitorTime);
        var heartbeats = new ConcurrentQueue<CeleryEvent>();
        var receiver = new EventReceiver(monitor) { WakeupWorkers = false };
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task reading = Task.Run(async () =>
        {
            await foreach (CeleryEvent e in receiver.ReadAsync(stopReading.Token))
            {
                state.Apply(e);
                if (e.Type == "worker-heartbeat")
                {
                    heartbeats.Enqueue(e);
                }
            }
        }, Ct);
        await receiver.Subscribed.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        RunningWorker worker = await RunningWorker.StartAsync(workerApp);
        try
        {
            Assert.True(await Poll.UntilAsync(() => state.GetWorker("beating@test")?.Alive == true, TimeSpan.FromSeconds(10)), "worker-online not seen");
            Assert.Empty(heartbeats);

            // Each interval on the worker's clock is one heartbeat; the monitor's clock moves with it.
            for (int beat = 1; beat <= 3; beat++)
            {
                await AdvanceUntilAsync(workerTime, () => heartbeats.Count >= beat);
                monitorTime.Advance(TimeSpan.FromSeconds(2));
                Assert.True(state.GetWorker("beating@test")!.Alive);
            }

            CeleryEvent last = heartbeats.Last();
            Assert.Equal((2.0, 0L, "celeriac"), (last.GetDouble("freq"), last.GetInt64("active"), last.GetString("sw_ident")));
            Assert.Equal(EventMessages.Timestamp(s_start + TimeSpan.FromSeconds(6)), last.Timestamp);

            // The worker's clock stands still (no more heartbeats), the monitor's goes on: alive up to freq × 200%.
            DateTimeOffset lastSeen = state.GetWorker("beating@test")!.LastHeartbeat!.Value;
            monitorTime.SetUtcNow(lastSeen + TimeSpan.FromSeconds(3.9));
            Assert.True(state.GetWorker("beating@test")!.Alive);
            monitorTime.SetUtcNow(lastSeen + TimeSpan.FromSeconds(4.1));
            Assert.False(state.GetWorker("beating@test")!.Alive);

            // It beats again: alive again.
            int before = heartbeats.Count;
            await AdvanceUntilAsync(workerTime, () => heartbeats.Count > before);
            Assert.True(state.GetWorker("beating@test")!.Alive);
        }
        finally
        {
            await worker.DisposeAsync();
        }

        // A warm stop sends worker-offline: offline at once, with no time passing on the monitor.
        Assert.True(await Poll.UntilAsync(() => state.GetWorker("beating@test")?.Alive == false, TimeSpan.FromSeconds(10)), "worker-offline not seen");
        await stopReading.CancelAsync();
        await reading.WaitAsync(TimeSpan.FromSeconds(10), Ct);
    }

    /// <summary>Moves the worker's clock on by one interval and waits for what that should cause.</summary>
    private static async Task AdvanceUntilAsync(FakeTimeProvider time, Func<bool> condition)
    {
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await Poll.UntilAsync(condition, TimeSpan.FromSeconds(10)), "no heartbeat after the interval");
    }
}
