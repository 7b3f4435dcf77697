using Microsoft.Playwright;

namespace Celeriac.BrowserTests.Support;

/// <summary>What the tests look for on the dashboard's pages, by the <c>data-testid</c>s the pages promise.</summary>
public static class Ui
{
    /// <summary>How long a live change may take to reach the page: an event's trip through the broker and the stream.</summary>
    public static readonly float LiveTimeout = 15_000;

    /// <summary>The row of task <paramref name="id"/> on the tasks page.</summary>
    public static ILocator TaskRow(IPage page, string id) => page.Locator($"[data-testid=task-row][data-uuid='{id}']");

    /// <summary>The state cell of task <paramref name="id"/> on the tasks page.</summary>
    public static ILocator TaskState(IPage page, string id) => TaskRow(page, id).Locator("[data-testid=task-state]");

    /// <summary>The status cell (online/offline) of worker <paramref name="hostname"/> on the workers page.</summary>
    public static ILocator WorkerStatus(IPage page, string hostname) =>
        page.Locator($"[data-testid=worker-row][data-hostname='{hostname}'] [data-testid=worker-status]");

    /// <summary>A field of the task page.</summary>
    public static ILocator TaskField(IPage page, string name) => page.GetByTestId("task-field-" + name);

    /// <summary>Opens the dashboard at a hash route and waits until its live stream is connected.</summary>
    public static async Task OpenAsync(IPage page, DashboardCluster cluster, string route)
    {
        IResponse? response = await page.GotoAsync(cluster.Url + "#/" + route);
        Assert.NotNull(response);
        Assert.Equal(200, response.Status);
        await Assertions.Expect(page.GetByTestId("live")).ToHaveTextAsync("live", new() { Timeout = LiveTimeout });
    }

    /// <summary>Waits (up to 30 s) until the task has finished, whatever its outcome, and returns its state.</summary>
    public static async Task<string> FinishedAsync(AsyncResult result)
    {
        TaskResultMeta meta = await result.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        return meta.Status;
    }

    /// <summary>Searches the tasks page the way a user does: types into the box and presses Enter.</summary>
    public static async Task SearchAsync(IPage page, string search)
    {
        ILocator box = page.GetByTestId("task-search");
        await box.FillAsync(search);
        await box.PressAsync("Enter");
    }
}
