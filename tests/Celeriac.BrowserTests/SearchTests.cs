using Celeriac.BrowserTests.Support;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Celeriac.BrowserTests;

/// <summary>The tasks page's search box, in Flower's syntax.</summary>
public sealed class SearchTests(BrowserFixture browser, RedisFixture redis)
{
    [Fact]
    public async Task SearchBox_FindsByStateNameAndKwargs()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis);
        AsyncResult add = await cluster.SendAsync("test.add", [1, 2]);
        AsyncResult mul = await cluster.SendAsync("test.mul", [3, 4]);
        AsyncResult blue = await cluster.SendAsync("test.tagged", kwargs: new Dictionary<string, object?> { ["tag"] = "blue", ["n"] = 1 });
        AsyncResult red = await cluster.SendAsync("test.tagged", kwargs: new Dictionary<string, object?> { ["tag"] = "red", ["n"] = 2 });
        AsyncResult failed = await cluster.SendAsync("test.fail", ["searched"]);
        foreach (AsyncResult r in new[] { add, mul, blue, red })
        {
            Assert.Equal(TaskStates.Success, await Ui.FinishedAsync(r));
        }

        Assert.Equal(TaskStates.Failure, await Ui.FinishedAsync(failed));

        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        ILocator rows = page.GetByTestId("task-row");
        await Ui.OpenAsync(page, cluster, "tasks");
        await Expect(rows).ToHaveCountAsync(5, new() { Timeout = Ui.LiveTimeout });
        await Expect(Ui.TaskState(page, failed.Id)).ToHaveTextAsync("FAILURE", new() { Timeout = Ui.LiveTimeout });
        await Expect(Ui.TaskState(page, red.Id)).ToHaveTextAsync("SUCCESS", new() { Timeout = Ui.LiveTimeout });

        await Ui.SearchAsync(page, "state:FAILURE");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(Ui.TaskRow(page, failed.Id)).ToBeVisibleAsync();
        Assert.Contains("search=state%3AFAILURE", page.Url, StringComparison.Ordinal);

        await Ui.SearchAsync(page, "name:test.mul");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(Ui.TaskRow(page, mul.Id)).ToBeVisibleAsync();

        await Ui.SearchAsync(page, "kwargs:tag=blue");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(Ui.TaskRow(page, blue.Id)).ToBeVisibleAsync();

        await Ui.SearchAsync(page, "state:SUCCESS name:test.tagged");
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(Ui.TaskRow(page, blue.Id)).ToBeVisibleAsync();
        await Expect(Ui.TaskRow(page, red.Id)).ToBeVisibleAsync();

        await Ui.SearchAsync(page, "");
        await Expect(rows).ToHaveCountAsync(5);
        await Expect(page.GetByTestId("task-total")).ToHaveTextAsync("5 tasks");
        watched.AssertNoProblems();
    }
}
