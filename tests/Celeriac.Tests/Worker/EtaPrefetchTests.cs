using Celeriac.Worker;
using Microsoft.Data.Sqlite;

namespace Celeriac.Tests.Worker;

/// <summary>Tasks waiting for their ETA do not take the prefetch window from immediate ones.</summary>
public sealed class EtaPrefetchTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-eta-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    public static TheoryData<string> Brokers => ["memory", "sqlite"];

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task Worker_MoreCountdownTasksThanPrefetch_ImmediateTaskStillRunsAndCountdownsRunLater(string broker)
    {
        string url = broker == "memory" ? "memory://" + Guid.NewGuid().ToString("N") : "sqlite:///" + Path.Join(_directory, "eta.db");

        // Window of one: before deferral, a single waiting countdown task blocked everything behind it.
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = url, Concurrency = 1, PrefetchMultiplier = 1 });
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        AsyncResult[] later = await Task.WhenAll(Enumerable.Range(0, 5).Select(i =>
            add.ApplyAsync([i, i], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(2) }, ct: Ct)));
        AsyncResult now = await add.DelayAsync(20, 22);
        using var stop = new CancellationTokenSource();
        var worker = new CeleriacWorker(app);
        Task run = worker.RunAsync(stop.Token);

        Assert.Equal(42, await now.GetAsync<int>(TimeSpan.FromSeconds(1.5), Ct));
        foreach (AsyncResult r in later)
        {
            Assert.Equal(TaskStates.Pending, await r.GetStateAsync(Ct));
        }
        for (int i = 0; i < later.Length; i++)
        {
            Assert.Equal(2 * i, await later[i].GetAsync<int>(TimeSpan.FromSeconds(15), Ct));
        }

        await stop.CancelAsync();
        await run;
    }
}
