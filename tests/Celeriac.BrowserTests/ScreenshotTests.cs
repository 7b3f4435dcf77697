using Celeriac.BrowserTests.Support;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Celeriac.BrowserTests;

/// <summary>
/// The README's screenshots (workers, tasks, task; and worker, charts), taken of real pages with real data.
/// They land in the test's temp directory, or, when
/// <c>CELERIAC_SCREENSHOTS</c> names a directory (<c>CELERIAC_SCREENSHOTS=$PWD/docs/images</c>), there.
/// </summary>
public sealed class ScreenshotTests(BrowserFixture browser, RedisFixture redis)
{
    [Fact]
    public async Task Screenshots_OfTheWorkersTasksAndTaskPages()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis, new DashboardSettings { NodeName = "worker1@localhost" });
        string target = Environment.GetEnvironmentVariable("CELERIAC_SCREENSHOTS") is { Length: > 0 } dir ? dir : cluster.WorkDir;
        Directory.CreateDirectory(target);

        // A second worker that stays, and a third that shuts down: the workers page as a small cluster shows it.
        using var stopOthers = new CancellationTokenSource();
        using var stopThird = new CancellationTokenSource();
        (CeleriacApp second, Task secondRun) = await cluster.RunWorkerAsync("worker2@localhost", 4, stopOthers.Token);
        await using CeleriacApp secondApp = second;
        (CeleriacApp third, Task thirdRun) = await cluster.RunWorkerAsync("reports@localhost", 1, stopThird.Token);
        await using CeleriacApp thirdApp = third;

        var results = new List<AsyncResult>();
        for (int i = 0; i < 14; i++)
        {
            results.Add(await cluster.SendAsync(i % 3 == 0 ? "test.mul" : "test.add", [i, i + 1]));
        }

        results.Add(await cluster.SendAsync("test.tagged", kwargs: new Dictionary<string, object?> { ["tag"] = "blue", ["n"] = 7 }));
        results.Add(await cluster.SendAsync("test.fail", ["the report service answered 503"]));
        AsyncResult flaky = await cluster.SendAsync("test.flaky", ["invoice-1042"]);
        results.Add(flaky);
        foreach (AsyncResult r in results)
        {
            await Ui.FinishedAsync(r);
        }

        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        await Ui.OpenAsync(page, cluster, "tasks");
        await Expect(Ui.TaskState(page, flaky.Id)).ToHaveTextAsync("FAILURE", new() { Timeout = Ui.LiveTimeout });
        await Ui.TaskRow(page, flaky.Id).GetByRole(AriaRole.Link, new() { Name = flaky.Id[..8] }).ClickAsync();
        await page.GetByTestId("retry-task").ClickAsync();
        ILocator retriedAs = Ui.TaskField(page, "retried_as").GetByRole(AriaRole.Link);
        await Expect(retriedAs).ToHaveCountAsync(1, new() { Timeout = Ui.LiveTimeout });
        Assert.Equal(TaskStates.Success, await Ui.FinishedAsync(cluster.Client.AsyncResult((await retriedAs.TextContentAsync())!.Trim())));
        await page.Locator(".toast").EvaluateAllAsync<object?>("els => els.forEach(e => e.remove())");
        await ShootAsync(page, Path.Join(target, "dashboard-task.png"), fullPage: true);

        await page.GetByTestId("nav-tasks").ClickAsync();
        await Expect(page.GetByTestId("task-row")).ToHaveCountAsync(results.Count + 1, new() { Timeout = Ui.LiveTimeout });
        await Expect(page.Locator("[data-testid=task-state]", new() { HasTextString = "STARTED" })).ToHaveCountAsync(0, new() { Timeout = Ui.LiveTimeout });
        await ShootAsync(page, Path.Join(target, "dashboard-tasks.png"));

        await page.GetByTestId("nav-workers").ClickAsync();
        await Expect(Ui.WorkerStatus(page, cluster.NodeName)).ToHaveTextAsync("online", new() { Timeout = Ui.LiveTimeout });
        await Expect(Ui.WorkerStatus(page, "worker2@localhost")).ToHaveTextAsync("online", new() { Timeout = Ui.LiveTimeout });
        await Expect(Ui.WorkerStatus(page, "reports@localhost")).ToHaveTextAsync("online", new() { Timeout = Ui.LiveTimeout });
        await stopThird.CancelAsync();
        await thirdRun.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
        await Expect(Ui.WorkerStatus(page, "reports@localhost")).ToHaveTextAsync("offline", new() { Timeout = Ui.LiveTimeout });
        await ShootAsync(page, Path.Join(target, "dashboard-workers.png"));

        await page.GetByRole(AriaRole.Link, new() { Name = "worker2@localhost", Exact = true }).ClickAsync();
        await Expect(page.Locator(".tasklist")).ToContainTextAsync("test.flaky", new() { Timeout = Ui.LiveTimeout });
        await ShootAsync(page, Path.Join(target, "dashboard-worker.png"), fullPage: true);
        await page.GetByTestId("nav-charts").ClickAsync();
        await Expect(page.GetByTestId("chart-runtimes")).ToContainTextAsync("test.add", new() { Timeout = Ui.LiveTimeout });
        await ShootAsync(page, Path.Join(target, "dashboard-charts.png"), fullPage: true);
        watched.AssertNoProblems();
        await stopOthers.CancelAsync();
        await secondRun.WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
    }

    private static async Task ShootAsync(IPage page, string path, bool fullPage = false)
    {
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = fullPage, Animations = ScreenshotAnimations.Disabled });
        Assert.True(new FileInfo(path).Length > 10_000, $"{path} looks empty");
    }
}
