using Celeriac.BrowserTests.Support;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Celeriac.BrowserTests;

/// <summary>A worker that dies without a word (kill -9) is shown offline once its heartbeats stop.</summary>
public sealed class WorkerOfflineTests(BrowserFixture browser, RedisFixture redis)
{
    [Fact]
    public async Task WorkerKilledWithSigkill_TurnsOffline_WhileTheOtherStaysOnline()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis);
        string victim = "victim-" + cluster.NodeName;
        await using WorkerProcess process = await WorkerProcess.StartAsync(cluster.BrokerUrl, victim, cluster.WorkDir);

        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        await Ui.OpenAsync(page, cluster, "workers");
        await Expect(Ui.WorkerStatus(page, victim)).ToHaveTextAsync("online", new() { Timeout = Ui.LiveTimeout });
        await Expect(Ui.WorkerStatus(page, cluster.NodeName)).ToHaveTextAsync("online", new() { Timeout = Ui.LiveTimeout });

        await process.KillHardAsync();

        // Heartbeats come every second; Celery's expiry window is two of them, so a few seconds is plenty.
        await Expect(Ui.WorkerStatus(page, victim)).ToHaveTextAsync("offline", new() { Timeout = Ui.LiveTimeout });
        await Expect(Ui.WorkerStatus(page, cluster.NodeName)).ToHaveTextAsync("online");
        watched.AssertNoProblems();
    }
}
