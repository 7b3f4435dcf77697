using System.Diagnostics;
using Celeriac.Dashboard.Ingestion;
using Celeriac.Dashboard.Store;
using Celeriac.Events;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac.IntegrationTests.Dashboard;

/// <summary>
/// Memory stays flat under load (flower#1305, #770): 1,000,000 task events (250,000 tasks of four events each) fed
/// through the dashboard's ingestion path (the core's ClusterState fold, batched writes to the default SQLite store,
/// pruning to MaxTasks) leave the process's resident set under a stated bound, and the store holds MaxTasks tasks.
/// </summary>
public sealed class DashboardMemoryTests : IDisposable
{
    /// <summary>The bound: the test process's whole RSS (runtime, xunit, SQLite's page cache included) after the run.</summary>
    private const long RssBoundBytes = 256L * 1024 * 1024;

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
        long before = Rss(self);
        long peak = before;
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
            $"1,000,000 events in {took.TotalSeconds:F1} s ({events / took.TotalSeconds:F0}/s): RSS before {before >> 20} MiB, after {after >> 20} MiB, peak sampled {peak >> 20} MiB, GC heap {GC.GetTotalMemory(false) >> 20} MiB");
        Assert.Equal(1_000_000, events);
        Assert.Equal(1_000_000, ingestor.EventsApplied);
        TaskPage page = await store.QueryTasksAsync(new TaskQuery { Limit = 1 }, Ct);
        Assert.Equal(maxTasks, page.Total);
        Assert.True(after < RssBoundBytes, $"RSS after 1,000,000 events: {after >> 20} MiB (bound {RssBoundBytes >> 20} MiB)");
        Assert.True(peak < RssBoundBytes, $"peak RSS sampled: {peak >> 20} MiB (bound {RssBoundBytes >> 20} MiB)");
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
