using System.Diagnostics;
using Celeriac.Dashboard.Ingestion;
using Celeriac.Dashboard.Store;
using Celeriac.Events;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac.IntegrationTests.Dashboard;

/// <summary>
/// Memory stays flat under load (flower#1305, #770): 1,000,000 task events (250,000 tasks of four events each) fed
/// through the dashboard's ingestion path (the core's ClusterState fold, batched writes to the default SQLite store,
/// pruning to MaxTasks) leave the process's resident set flat: the second half of the events adds less than a stated
/// bound to it, and the store holds MaxTasks tasks. It runs alone (<see cref="DashboardMemoryGroup"/>), so that nothing
/// else allocates while it measures.
/// </summary>
[Collection(DashboardMemoryGroup.Name)]
public sealed class DashboardMemoryTests : IDisposable
{
    /// <summary>
    /// The bound on what the second half of the events (125,000 tasks, after the store was first pruned) adds to the
    /// test process's RSS (5-11 MiB measured): a fold that kept every task grew it by 162 MiB (HotTasks set to a million;
    /// an unpruned store shows in its task count, checked below). Not the
    /// process's whole RSS, which also holds what the suite's earlier tests left (71 MiB before this test alone, 248 MiB
    /// in a full run), nor its growth from the start, which is mostly the runtime's heap reaching its working size (106
    /// MiB alone, 25 MiB in a full run).
    /// </summary>
    private const long SecondHalfBoundBytes = 32L * 1024 * 1024;

    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-dash-rss-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task MillionEvents_ThroughIngestion_RssStaysUnderBound_AndStoreIsPrunedToMaxTasks()
    {
        const int tasks = 250_000;
        const int maxTasks = 100_000;
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://rss-" + Guid.NewGuid().ToString("N") }));
        services.AddCeleriacDashboard(o =>
        {
            o.StoreUrl = "sqlite:///" + Path.Combine(_directory, "dashboard.db");
            o.MaxTasks = maxTasks;
        });
        await using ServiceProvider provider = services.BuildServiceProvider();
        DashboardIngestor ingestor = provider.GetRequiredService<DashboardIngestor>();
        IDashboardStore store = provider.GetRequiredService<IDashboardStore>();

        using Process self = Process.GetCurrentProcess();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = Rss(self);
        long peak = before;
        long half = 0;
        double t0 = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0 - 3600;
        var clock = Stopwatch.StartNew();
        long events = 0;
        for (int i = 0; i < tasks; i++)
        {
            string uuid = Guid.NewGuid().ToString();
            string worker = "w" + (i % 8) + "@load";
            double t = t0 + (i * 0.01);
            foreach (CeleryEvent e in Events(uuid, worker, t, i))
            {
                ingestor.Apply(e);
                events++;
            }

            // What the receive loop does: a write every 1,000 events (FlushEvents), the store pruned now and then.
            if (events % 1_000 == 0)
            {
                await ingestor.FlushAsync(Ct);
            }

            if (i % 50_000 == 49_999)
            {
                await store.PruneAsync(maxTasks, 0, Ct);
                peak = Math.Max(peak, Rss(self));
            }

            if (i == (tasks / 2) - 1)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                half = Rss(self);
                peak = half;
            }
        }

        await ingestor.FlushAsync(Ct);
        await store.PruneAsync(maxTasks, 0, Ct);
        TimeSpan took = clock.Elapsed;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long after = Rss(self);
        peak = Math.Max(peak, after);

        TestContext.Current.TestOutputHelper?.WriteLine(
            $"1,000,000 events in {took.TotalSeconds:F1} s ({events / took.TotalSeconds:F0}/s): RSS before {before >> 20} MiB, at half {half >> 20} MiB, after {after >> 20} MiB, peak sampled in the second half {peak >> 20} MiB, GC heap {GC.GetTotalMemory(false) >> 20} MiB");
        Assert.Equal(1_000_000, events);
        Assert.Equal(1_000_000, ingestor.EventsApplied);
        TaskPage page = await store.QueryTasksAsync(new TaskQuery { Limit = 1 }, Ct);
        Assert.Equal(maxTasks, page.Total);
        Assert.True(after - half < SecondHalfBoundBytes, $"RSS grew by {(after - half) >> 20} MiB over the second 500,000 events (bound {SecondHalfBoundBytes >> 20} MiB)");
        Assert.True(peak - half < SecondHalfBoundBytes, $"peak RSS sampled in the second half {(peak - half) >> 20} MiB above the half (bound {SecondHalfBoundBytes >> 20} MiB)");
    }

    private static long Rss(Process self)
    {
        self.Refresh();
        return self.WorkingSet64;
    }

    private static IEnumerable<CeleryEvent> Events(string uuid, string worker, double t, int i)
    {
        Dictionary<string, object?> E(string type, double at) => new(StringComparer.Ordinal)
        {
            ["type"] = type, ["uuid"] = uuid, ["hostname"] = worker, ["timestamp"] = at, ["local_received"] = at, ["clock"] = (long)i,
        };
        Dictionary<string, object?> received = E("task-received", t);
        received["name"] = "load.add";
        received["args"] = $"({i}, 1)";
        received["kwargs"] = "{'tag': 'load'}";
        received["retries"] = 0L;
        Dictionary<string, object?> succeeded = E("task-succeeded", t + 0.003);
        succeeded["result"] = (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        succeeded["runtime"] = 0.002;
        return [new CeleryEvent(E("task-sent", t - 0.001)), new CeleryEvent(received), new CeleryEvent(E("task-started", t + 0.001)), new CeleryEvent(succeeded)];
    }
}

/// <summary>The dashboard memory test's own collection: nothing else runs while it measures the process's RSS.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DashboardMemoryGroup
{
    public const string Name = "DashboardMemory";
}
