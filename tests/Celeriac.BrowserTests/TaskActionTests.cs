using Celeriac.BrowserTests.Support;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Celeriac.BrowserTests;

/// <summary>Revoke and terminate from the task page; paging through the tasks table.</summary>
public sealed class TaskActionTests(BrowserFixture browser, RedisFixture redis)
{
    [Fact]
    public async Task RunningTask_TerminatedFromItsPage_EndsRevoked()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis);
        AsyncResult running = await cluster.SendAsync("test.sleep", [60.0]);

        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        await Ui.OpenAsync(page, cluster, "tasks");
        await Expect(Ui.TaskState(page, running.Id)).ToHaveTextAsync("STARTED", new() { Timeout = Ui.LiveTimeout });
        await Ui.TaskRow(page, running.Id).GetByRole(AriaRole.Link, new() { Name = running.Id[..8] }).ClickAsync();
        await Expect(Ui.TaskField(page, "state")).ToHaveTextAsync("STARTED");
        await Expect(page.GetByTestId("retry-task")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("revoke-task")).ToBeVisibleAsync();

        await page.GetByTestId("terminate-task").ClickAsync();
        await page.GetByTestId("confirm-yes").ClickAsync();
        await Expect(Ui.TaskField(page, "state")).ToHaveTextAsync("REVOKED", new() { Timeout = Ui.LiveTimeout });
        await Expect(page.GetByTestId("task-events")).ToContainTextAsync("task-revoked");
        await Expect(page.GetByTestId("terminate-task")).ToHaveCountAsync(0);
        Assert.Equal(TaskStates.Revoked, await Ui.FinishedAsync(running));
        watched.AssertNoProblems();
    }

    [Fact]
    public async Task TasksTable_PagesThroughFiftyAtATime()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis);
        var sent = new List<AsyncResult>();
        for (int i = 0; i < 57; i++)
        {
            sent.Add(await cluster.SendAsync("test.add", [i, 1]));
        }

        foreach (AsyncResult r in sent)
        {
            Assert.Equal(TaskStates.Success, await Ui.FinishedAsync(r));
        }

        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        ILocator rows = page.GetByTestId("task-row");
        await Ui.OpenAsync(page, cluster, "tasks");
        await Expect(page.GetByTestId("task-total")).ToHaveTextAsync("57 tasks", new() { Timeout = Ui.LiveTimeout });
        await Expect(rows).ToHaveCountAsync(50);

        await page.GetByTestId("page-next").ClickAsync();
        await Expect(rows).ToHaveCountAsync(7);
        Assert.EndsWith("#/tasks?page=2", page.Url, StringComparison.Ordinal);
        await Expect(page.GetByTestId("page-next")).ToHaveCountAsync(0);
        var second = new HashSet<string>(StringComparer.Ordinal);
        foreach (ILocator row in await rows.AllAsync())
        {
            second.Add((await row.GetAttributeAsync("data-uuid"))!);
        }

        await page.GetByTestId("page-prev").ClickAsync();
        await Expect(rows).ToHaveCountAsync(50);
        foreach (ILocator row in await rows.AllAsync())
        {
            Assert.DoesNotContain((await row.GetAttributeAsync("data-uuid"))!, second);
        }

        Assert.Equal(57, second.Count + 50);
        watched.AssertNoProblems();
    }
}
