using System.Diagnostics;
using Celeriac.Events;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// A Celeriac worker process killed with SIGKILL sends no <c>worker-offline</c>; the cluster state shows it offline
/// once its heartbeats stop, within three heartbeat intervals of the last one.
/// </summary>
public sealed class WorkerKilledEventsTests(RedisInteropFixture fx) : IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-killed-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task KilledWorker_NoWorkerOffline_ShownOfflineWithinThreeHeartbeats()
    {
        string node = "killed-" + Guid.NewGuid().ToString("N")[..8] + "@localhost";
        await using CeleriacApp client = fx.NewApp();
        var state = new ClusterState();
        var receiver = new EventReceiver(client);
        var types = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task reading = Task.Run(async () =>
        {
            await foreach (CeleryEvent e in receiver.ReadAsync(stopReading.Token))
            {
                lock (state)
                {
                    state.Apply(e);
                }

                if (e.Hostname == node)
                {
                    types.Enqueue(e.Type);
                }
            }
        }, Ct);
        await receiver.Subscribed.WaitAsync(s_wait, Ct);
        var env = new Dictionary<string, string> { ["CELERIAC_WITHOUT_MINGLE"] = "true" };
        await using CeleriacWorkerProcess worker = await CeleriacWorkerProcess.StartAsync(_dir, fx.BrokerUrl, fx.BackendUrl, "killed." + node, 1, node, env);

        // Two heartbeats seen: it beats, and the last one is known.
        Assert.True(await PollAsync(() => types.Count(t => t == "worker-heartbeat") >= 2 && Alive(state, node) == true, s_wait), "no heartbeats: " + string.Join(", ", types));
        using (var process = Process.GetProcessById(worker.Id))
        {
            process.Kill(); // SIGKILL: nothing runs in the worker after this
            await process.WaitForExitAsync(Ct);
        }

        var sinceKill = Stopwatch.StartNew();
        Assert.True(await PollAsync(() => Alive(state, node) == false, s_wait), "the killed worker stayed online");
        TimeSpan tookAfterKill = sinceKill.Elapsed;

        Assert.DoesNotContain("worker-offline", types);
        ClusterWorker dead = Get(state, node)!;
        double freq = dead.Freq;
        Assert.True(tookAfterKill <= TimeSpan.FromSeconds(3 * freq + 0.5), $"offline {tookAfterKill.TotalSeconds:F1} s after the kill (heartbeat every {freq} s)");
        await stopReading.CancelAsync();
        await reading.WaitAsync(s_wait, Ct);
    }

    private static bool? Alive(ClusterState state, string node) => Get(state, node)?.Alive;

    private static ClusterWorker? Get(ClusterState state, string node)
    {
        lock (state)
        {
            return state.GetWorker(node);
        }
    }

    private static async Task<bool> PollAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                return false;
            }

            await Task.Delay(50, Ct);
        }

        return true;
    }
}
