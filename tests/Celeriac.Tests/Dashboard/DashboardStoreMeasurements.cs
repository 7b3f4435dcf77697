using System.Diagnostics;
using System.Globalization;
using Celeriac.Dashboard.Ingestion;
using Celeriac.Dashboard.Store;
using Celeriac.Events;

namespace Celeriac.Tests.Dashboard;

/// <summary>
/// Figures per store, run on demand (<c>./Celeriac.Tests -class Celeriac.Tests.Dashboard.DashboardStoreMeasurements -explicit only -showliveoutput</c>):
/// one batch of 10,000 task events written, the same through the ingestion path, and a search over 10,000 tasks.
/// </summary>
public sealed class DashboardStoreMeasurements(Celeriac.Tests.Conformance.RedisServerFixture redis) : IDisposable, IClassFixture<Celeriac.Tests.Conformance.RedisServerFixture>
{
    private const int Count = 10_000;
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-dash-measure-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    private static void Report(string line) => TestContext.Current.TestOutputHelper!.WriteLine(line);

    [Theory(Explicit = true)]
    [InlineData("sqlite")]
    [InlineData("redis")]
    [InlineData("postgresql")]
    public async Task Measure(string kind)
    {
        double now = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;

        // A batch as the ingestion service writes it: each event's task as it stood after the event, and the event.
        DashboardTask[] tasks = [.. Enumerable.Range(0, Count).Select(i => new DashboardTask
        {
            Uuid = Guid.NewGuid().ToString(), State = "SUCCESS", Name = "bulk." + (i % 10).ToString(CultureInfo.InvariantCulture),
            Received = now - 10 + (i / 1000.0), Started = now - 10 + (i / 1000.0), Succeeded = now - 10 + (i / 1000.0), Timestamp = now - 10 + (i / 1000.0),
            Runtime = 0.001, Args = $"({i}, 1)", Kwargs = "{'mode': 'fast'}", Result = (i + 1).ToString(CultureInfo.InvariantCulture), Worker = "bulk@test", Clock = i,
        })];
        TaskEventRecord[] events = [.. tasks.Select(t => new TaskEventRecord(t.Uuid, "task-succeeded", t.Timestamp, "bulk@test", """{"result":"1","runtime":0.001}"""))];
        await using (IDashboardStore store = await DashboardStores.OpenAsync(await DashboardRestartTests.NewStoreUrlAsync(kind, redis.Server, Path.Combine(_directory, "a")), Ct))
        {
            var write = Stopwatch.StartNew();
            await store.WriteAsync(new DashboardBatch(tasks, [], events), Ct);
            write.Stop();
            Report($"{kind}: one batch of {Count:N0} task events (task upsert + event append each): {write.Elapsed.TotalMilliseconds:F0} ms, {Count / write.Elapsed.TotalSeconds:N0} events/s");

            foreach ((string label, TaskQuery query, int expected) in new[]
            {
                ("search args:\"(9999, 1)\"", new TaskQuery { Search = TaskSearch.Parse("args:\"(9999, 1)\"") }, 1),
                ("search kwargs:mode=fast (all match, first page of 100)", new TaskQuery { Search = TaskSearch.Parse("kwargs:mode=fast") }, Count),
                ("search state:SUCCESS name:bulk.3", new TaskQuery { Search = TaskSearch.Parse("state:SUCCESS name:bulk.3") }, Count / 10),
                ("no search, newest first, first page of 100", new TaskQuery(), Count),
            })
            {
                var times = new List<double>();
                for (int run = 0; run < 5; run++)
                {
                    var sw = Stopwatch.StartNew();
                    TaskPage page = await store.QueryTasksAsync(query, Ct);
                    times.Add(sw.Elapsed.TotalMilliseconds);
                    Assert.Equal(expected, page.Total);
                }

                times.Sort();
                Report($"{kind}: {label} over {Count:N0} tasks: median {times[2]:F1} ms (min {times[0]:F1}, max {times[4]:F1})");
            }
        }

        // The whole ingestion path: 10,000 events (received, started, succeeded per task) folded and flushed to the store.
        string url = await DashboardRestartTests.NewStoreUrlAsync(kind, redis.Server, Path.Combine(_directory, "b"));
        await using DashboardHost host = await DashboardHost.StartAsync("memory://measure-" + Guid.NewGuid().ToString("N"), o => o.StoreUrl = url);
        DashboardIngestor ingestor = host.Ingestor;
        CeleryEvent[] stream = [.. Enumerable.Range(0, (Count / 3) + 1).SelectMany(i => DashboardRestartTests.TaskEvents(Guid.NewGuid().ToString(), "bulk@test", now - 10 + (i / 1000.0), i)).Take(Count)];
        var ingest = Stopwatch.StartNew();
        foreach (CeleryEvent e in stream)
        {
            ingestor.Apply(e);
        }

        await ingestor.FlushAsync(Ct);
        ingest.Stop();
        Report($"{kind}: ingestion path, {Count:N0} events applied and flushed: {ingest.Elapsed.TotalMilliseconds:F0} ms, {Count / ingest.Elapsed.TotalSeconds:N0} events/s");
        Assert.Equal((Count / 3) + 1, (await host.GetJsonAsync("api/dashboard/tasks?limit=1")).GetProperty("total").GetInt64());
    }
}
