using Celeriac.BrowserTests.Support;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Celeriac.BrowserTests;

/// <summary>Every page of the dashboard, opened by a user through its navigation, with real data behind it.</summary>
public sealed class PagesTests(BrowserFixture browser, RedisFixture redis)
{
    [Fact]
    public async Task EveryPage_WithRealData_LoadsWithoutConsoleErrorOrFailedRequest()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis);
        AsyncResult ok = await cluster.SendAsync("test.add", [2, 3]);
        AsyncResult failed = await cluster.SendAsync("test.fail", ["boom on purpose"]);
        Assert.Equal(TaskStates.Success, await Ui.FinishedAsync(ok));
        Assert.Equal(TaskStates.Failure, await Ui.FinishedAsync(failed));

        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        await Ui.OpenAsync(page, cluster, "workers");
        await Expect(Ui.WorkerStatus(page, cluster.NodeName)).ToHaveTextAsync("online", new() { Timeout = Ui.LiveTimeout });

        await page.GetByRole(AriaRole.Link, new() { Name = cluster.NodeName, Exact = true }).ClickAsync();
        await Expect(page.GetByTestId("worker-status")).ToHaveTextAsync("online");
        await Expect(page.Locator(".tasklist")).ToContainTextAsync("test.flaky", new() { Timeout = Ui.LiveTimeout });
        await Expect(page.GetByTestId("worker-shutdown")).ToBeVisibleAsync();

        await page.GetByTestId("nav-tasks").ClickAsync();
        await Expect(Ui.TaskState(page, ok.Id)).ToHaveTextAsync("SUCCESS", new() { Timeout = Ui.LiveTimeout });
        await Expect(Ui.TaskState(page, failed.Id)).ToHaveTextAsync("FAILURE", new() { Timeout = Ui.LiveTimeout });

        await Ui.TaskRow(page, failed.Id).GetByRole(AriaRole.Link, new() { Name = failed.Id[..8] }).ClickAsync();
        await Expect(Ui.TaskField(page, "state")).ToHaveTextAsync("FAILURE");
        await Expect(Ui.TaskField(page, "name")).ToHaveTextAsync("test.fail");
        await Expect(Ui.TaskField(page, "traceback")).ToContainTextAsync("boom on purpose");
        await Expect(page.GetByTestId("task-events")).ToContainTextAsync("task-failed");
        await Expect(page.GetByTestId("retry-task")).ToBeVisibleAsync();

        await page.GetByTestId("nav-queues").ClickAsync();
        await Expect(page.Locator("[data-testid=queue-row][data-queue=celery] [data-testid=queue-messages]")).ToHaveTextAsync("0", new() { Timeout = Ui.LiveTimeout });

        await page.GetByTestId("nav-charts").ClickAsync();
        await Expect(page.GetByTestId("chart-throughput").Locator("svg circle").First).ToBeVisibleAsync(new() { Timeout = Ui.LiveTimeout });
        await Expect(page.GetByTestId("chart-runtimes")).ToContainTextAsync("test.add");

        await page.GetByTestId("nav-workers").ClickAsync();
        await Expect(Ui.WorkerStatus(page, cluster.NodeName)).ToHaveTextAsync("online");
        watched.AssertNoProblems();
    }

    [Fact]
    public async Task Assets_AreServedByTheDashboard_WithTheirContentTypes()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis, new DashboardSettings { WithWorker = false });
        await using WatchedPage watched = await browser.NewPageAsync();
        var assets = new List<(string Url, string? Type)>();
        watched.Page.Response += (_, r) => assets.Add((r.Url, r.Headers.GetValueOrDefault("content-type")));
        await Ui.OpenAsync(watched.Page, cluster, "workers");
        Assert.Contains(assets, a => a.Url.EndsWith("/static/app.js", StringComparison.Ordinal) && a.Type!.StartsWith("text/javascript", StringComparison.Ordinal));
        Assert.Contains(assets, a => a.Url.EndsWith("/static/app.css", StringComparison.Ordinal) && a.Type!.StartsWith("text/css", StringComparison.Ordinal));
        Assert.All(assets, a => Assert.StartsWith(cluster.Url, a.Url, StringComparison.Ordinal));
        watched.AssertNoProblems();
    }
}
