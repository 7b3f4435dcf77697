using System.Text.Json;
using Celeriac.Dashboard.Ingestion;
using Celeriac.Events;

namespace Celeriac.Tests.Dashboard;

/// <summary>History that survives a restart (flower#203, #476, #1145): a dashboard on each persistent store (SQLite, the default; Redis; PostgreSQL), restarted, still lists its tasks.</summary>
public sealed class DashboardRestartTests(Celeriac.Tests.Conformance.RedisServerFixture redis) : IDisposable, IClassFixture<Celeriac.Tests.Conformance.RedisServerFixture>
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-dash-restart-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>The events a worker sends for one task that succeeds.</summary>
    internal static IEnumerable<CeleryEvent> TaskEvents(string uuid, string worker, double t, int i)
    {
        Dictionary<string, object?> E(string type, double at) => new(StringComparer.Ordinal)
        {
            ["type"] = type, ["uuid"] = uuid, ["hostname"] = worker, ["timestamp"] = at, ["local_received"] = at, ["clock"] = (long)i,
        };
        Dictionary<string, object?> received = E("task-received", t);
        received["name"] = "bulk.add";
        received["args"] = $"({i}, 1)";
        received["kwargs"] = "{}";
        received["retries"] = 0L;
        Dictionary<string, object?> succeeded = E("task-succeeded", t + 0.002);
        succeeded["result"] = (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        succeeded["runtime"] = 0.001;
        return [new CeleryEvent(received), new CeleryEvent(E("task-started", t + 0.001)), new CeleryEvent(succeeded)];
    }

    /// <summary>A new, empty store of a kind: a file, a key prefix or a database of its own.</summary>
    internal static async Task<string> NewStoreUrlAsync(string kind, Celeriac.TestServers.RedisServer redis, string directory) => kind switch
    {
        "sqlite" => "sqlite:///" + Path.Combine(directory, "dashboard.db"),
        "redis" => redis.Url(4) + "?prefix=restart-" + Guid.NewGuid().ToString("N") + ":",
        _ => await Celeriac.Tests.Conformance.PostgresAssemblyFixture.NewDatabaseUrlAsync(),
    };

    [Theory]
    [InlineData("sqlite")]
    [InlineData("redis")]
    [InlineData("postgresql")]
    public async Task Restart_After10000Tasks_StillListsThemAll(string kind)
    {
        string store = await NewStoreUrlAsync(kind, redis.Server, _directory);
        string broker = "memory://restart-" + Guid.NewGuid().ToString("N");
        double now = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
        string[] ids = [.. Enumerable.Range(0, 10_000).Select(i => Guid.NewGuid().ToString())];
        await using (DashboardHost first = await DashboardHost.StartAsync(broker, o => o.StoreUrl = store))
        {
            DashboardIngestor ingestor = first.Ingestor;
            for (int i = 0; i < ids.Length; i++)
            {
                foreach (CeleryEvent e in TaskEvents(ids[i], "bulk@test", now - 10 + (i / 1000.0), i))
                {
                    ingestor.Apply(e);
                }
            }

            ingestor.Apply(new CeleryEvent(new Dictionary<string, object?> { ["type"] = "worker-heartbeat", ["hostname"] = "bulk@test", ["freq"] = 2.0, ["timestamp"] = now, ["local_received"] = now, ["active"] = 0L, ["processed"] = 10_000L }));
            await ingestor.FlushAsync(Ct);
            JsonElement before = await first.GetJsonAsync("api/dashboard/tasks?limit=1");
            Assert.Equal(10_000, before.GetProperty("total").GetInt64());
        }

        await using DashboardHost second = await DashboardHost.StartAsync(broker, o => o.StoreUrl = store);
        JsonElement after = await second.GetJsonAsync("api/dashboard/tasks?limit=1000&sort_by=-received");
        Assert.Equal(10_000, after.GetProperty("total").GetInt64());
        Assert.Equal(ids[^1], after.GetProperty("tasks")[0].GetProperty("uuid").GetString());
        Assert.All(after.GetProperty("tasks").EnumerateArray(), t => Assert.Equal("SUCCESS", t.GetProperty("state").GetString()));

        JsonElement oldest = await second.GetJsonAsync($"api/task/info/{ids[0]}");
        Assert.Equal(("bulk.add", "(0, 1)", "1", "bulk@test"), (oldest.GetProperty("name").GetString(), oldest.GetProperty("args").GetString(), oldest.GetProperty("result").GetString(), oldest.GetProperty("worker").GetString()));
        JsonElement detail = await second.GetJsonAsync($"api/dashboard/task/{ids[5000]}");
        Assert.Equal(["task-received", "task-started", "task-succeeded"], detail.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("type").GetString()));
        JsonElement page = await second.GetJsonAsync("api/dashboard/tasks?search=" + Uri.EscapeDataString("args:\"(9999, 1)\""));
        Assert.Equal(ids[9999], Assert.Single(page.GetProperty("tasks").EnumerateArray()).GetProperty("uuid").GetString());

        JsonElement workers = await second.GetJsonAsync("api/dashboard/workers");
        JsonElement worker = Assert.Single(workers.EnumerateArray());
        Assert.Equal(("bulk@test", 10_000L, 10_000L), (worker.GetProperty("hostname").GetString(), worker.GetProperty("processed").GetInt64(), worker.GetProperty("succeeded").GetInt64()));
    }
}
