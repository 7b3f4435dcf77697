using Celeriac.BrowserTests.Support;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Celeriac.BrowserTests;

/// <summary>The pages follow the cluster through the live stream, without a reload.</summary>
public sealed class LiveTests(BrowserFixture browser, RedisFixture redis)
{
    [Fact]
    public async Task TaskSentWhileTasksPageIsOpen_AppearsAndTurnsSuccess_WithoutReload()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis);
        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        await Ui.OpenAsync(page, cluster, "tasks");
        await page.EvaluateAsync("() => { window.__sameDocument = 'yes'; }");

        AsyncResult sent = await cluster.SendAsync("test.add", [20, 22]);
        await Expect(Ui.TaskState(page, sent.Id)).ToHaveTextAsync("SUCCESS", new() { Timeout = Ui.LiveTimeout });
        await Expect(Ui.TaskRow(page, sent.Id)).ToContainTextAsync("42");
        Assert.Equal(42, await sent.GetAsync<int>(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));

        Assert.Equal("yes", await page.EvaluateAsync<string>("() => window.__sameDocument"));
        watched.AssertNoProblems();
    }

    [Fact]
    public async Task TaskPageOpenBeforeTheTaskRuns_FollowsItToSuccess_WithoutReload()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis);
        AsyncResult first = await cluster.SendAsync("test.mul", [6, 7]);
        Assert.Equal(TaskStates.Success, await Ui.FinishedAsync(first));

        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        await Ui.OpenAsync(page, cluster, "workers");
        await page.EvaluateAsync("() => { window.__sameDocument = 'yes'; }");
        await Expect(Ui.WorkerStatus(page, cluster.NodeName)).ToHaveTextAsync("online", new() { Timeout = Ui.LiveTimeout });
        ILocator processed = page.Locator($"[data-testid=worker-row][data-hostname='{cluster.NodeName}'] td:nth-child(4)");
        await Expect(processed).ToHaveTextAsync("1", new() { Timeout = Ui.LiveTimeout });

        AsyncResult second = await cluster.SendAsync("test.mul", [3, 3]);
        Assert.Equal(TaskStates.Success, await Ui.FinishedAsync(second));
        await Expect(processed).ToHaveTextAsync("2", new() { Timeout = Ui.LiveTimeout });
        Assert.Equal("yes", await page.EvaluateAsync<string>("() => window.__sameDocument"));
        watched.AssertNoProblems();
    }
}
