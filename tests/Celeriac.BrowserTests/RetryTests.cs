using Celeriac.BrowserTests.Support;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Celeriac.BrowserTests;

/// <summary>Retrying failed tasks from the dashboard: Flower's oldest open request (flower#17).</summary>
public sealed class RetryTests(BrowserFixture browser, RedisFixture redis)
{
    [Fact]
    public async Task FailedTask_RetriedFromItsPage_RetrySucceedsAndLinksBack()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis);
        AsyncResult failed = await cluster.SendAsync("test.flaky", ["k1"]);
        Assert.Equal(TaskStates.Failure, await Ui.FinishedAsync(failed));

        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        await Ui.OpenAsync(page, cluster, "tasks");
        await Expect(Ui.TaskState(page, failed.Id)).ToHaveTextAsync("FAILURE", new() { Timeout = Ui.LiveTimeout });
        await Ui.TaskRow(page, failed.Id).GetByRole(AriaRole.Link, new() { Name = failed.Id[..8] }).ClickAsync();
        await Expect(Ui.TaskField(page, "state")).ToHaveTextAsync("FAILURE");
        await Expect(Ui.TaskField(page, "traceback")).ToContainTextAsync("first attempt for k1 fails");

        await page.GetByTestId("retry-task").ClickAsync();
        ILocator retriedAs = Ui.TaskField(page, "retried_as").GetByRole(AriaRole.Link);
        await Expect(retriedAs).ToHaveCountAsync(1, new() { Timeout = Ui.LiveTimeout });
        string newId = (await retriedAs.TextContentAsync())!.Trim();
        Assert.NotEqual(failed.Id, newId);

        await retriedAs.ClickAsync();
        await Expect(Ui.TaskField(page, "uuid")).ToHaveTextAsync(newId);
        await Expect(Ui.TaskField(page, "state")).ToHaveTextAsync("SUCCESS", new() { Timeout = Ui.LiveTimeout });
        await Expect(Ui.TaskField(page, "args")).ToContainTextAsync("k1");
        await Expect(Ui.TaskField(page, "retry_of")).ToHaveTextAsync(failed.Id);
        Assert.Equal("ok k1", await cluster.Client.AsyncResult(newId).GetAsync<string>(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
        watched.AssertNoProblems();
    }

    [Fact]
    public async Task RetryAllFailedMatchingTheFilter_ResendsOnlyThoseAndTheySucceed()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis);
        AsyncResult a = await cluster.SendAsync("test.flaky", ["a"]);
        AsyncResult b = await cluster.SendAsync("test.flaky", ["b"]);
        AsyncResult other = await cluster.SendAsync("test.fail", ["not retried"]);
        foreach (AsyncResult r in new[] { a, b, other })
        {
            Assert.Equal(TaskStates.Failure, await Ui.FinishedAsync(r));
        }

        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        await Ui.OpenAsync(page, cluster, "tasks?search=" + Uri.EscapeDataString("state:FAILURE name:test.flaky"));
        await Expect(page.GetByTestId("task-row")).ToHaveCountAsync(2, new() { Timeout = Ui.LiveTimeout });

        await page.GetByTestId("retry-all-failed").ClickAsync();
        await page.GetByTestId("confirm-yes").ClickAsync();
        await Expect(page.GetByTestId("toast")).ToContainTextAsync("Retried 2 failed task(s)", new() { Timeout = Ui.LiveTimeout });

        await Ui.SearchAsync(page, "state:SUCCESS name:test.flaky");
        await Expect(page.GetByTestId("task-row")).ToHaveCountAsync(2, new() { Timeout = Ui.LiveTimeout });
        await Ui.SearchAsync(page, "name:test.fail");
        await Expect(page.GetByTestId("task-row")).ToHaveCountAsync(1, new() { Timeout = Ui.LiveTimeout });
        watched.AssertNoProblems();
    }
}
