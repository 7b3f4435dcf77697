using Celeriac.BrowserTests.Support;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Celeriac.BrowserTests;

/// <summary>The worker page's controls, each used as a user does and checked in what the page then shows.</summary>
public sealed class WorkerControlTests(BrowserFixture browser, RedisFixture redis)
{
    [Fact]
    public async Task WorkerPage_PoolConsumerRateLimitAndShutdown_TakeEffect()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis);
        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        await Ui.OpenAsync(page, cluster, "worker/" + Uri.EscapeDataString(cluster.NodeName));
        await Expect(page.GetByTestId("worker-status")).ToHaveTextAsync("online", new() { Timeout = Ui.LiveTimeout });
        ILocator concurrency = page.GetByTestId("card-pool").Locator("tr", new() { HasTextString = "Concurrency" }).Locator("td");
        await Expect(concurrency).ToHaveTextAsync("2", new() { Timeout = Ui.LiveTimeout });

        await page.GetByTestId("pool-grow").ClickAsync();
        await Expect(concurrency).ToHaveTextAsync("3", new() { Timeout = Ui.LiveTimeout });
        await page.GetByTestId("pool-shrink").ClickAsync();
        await Expect(concurrency).ToHaveTextAsync("2", new() { Timeout = Ui.LiveTimeout });

        // As Celery's, a worker started without --autoscale refuses it: the page says so in the worker's words.
        watched.AllowErrorStatus(DashboardCluster.Prefix + "/api/worker/pool/autoscale/" + Uri.EscapeDataString(cluster.NodeName));
        await page.GetByTestId("autoscale-max").FillAsync("5");
        await page.GetByTestId("autoscale").ClickAsync();
        await Expect(page.GetByTestId("toast").Filter(new() { HasTextString = "Autoscale not enabled" })).ToBeVisibleAsync(new() { Timeout = Ui.LiveTimeout });

        await page.GetByTestId("consumer-queue").FillAsync("extra");
        await page.GetByTestId("add-consumer").ClickAsync();
        await Expect(page.GetByTestId("worker-queues")).ToContainTextAsync("extra", new() { Timeout = Ui.LiveTimeout });
        await page.GetByTestId("consumer-queue").FillAsync("extra");
        await page.GetByTestId("cancel-consumer").ClickAsync();
        await Expect(page.GetByTestId("worker-queues")).Not.ToContainTextAsync("extra", new() { Timeout = Ui.LiveTimeout });

        await page.GetByTestId("rate-limit-task").FillAsync("test.add");
        await page.GetByTestId("rate-limit-value").FillAsync("10/m");
        await page.GetByTestId("rate-limit").ClickAsync();
        await Expect(page.GetByTestId("worker-limits")).ToContainTextAsync("rate_limit=10/m", new() { Timeout = Ui.LiveTimeout });

        await page.GetByTestId("time-limit-task").FillAsync("test.sleep");
        await page.GetByTestId("time-limit-soft").FillAsync("1");
        await page.GetByTestId("time-limit-hard").FillAsync("1.5");
        await page.GetByTestId("time-limit").ClickAsync();
        await Expect(page.GetByTestId("toast").Filter(new() { HasTextString = "time limits set" })).ToBeVisibleAsync(new() { Timeout = Ui.LiveTimeout });
        AsyncResult limited = await cluster.SendAsync("test.sleep", [30.0]);
        Assert.Equal(TaskStates.Failure, await Ui.FinishedAsync(limited));

        await page.GetByTestId("worker-shutdown").ClickAsync();
        await Expect(page.GetByTestId("confirm")).ToContainTextAsync("Shut down " + cluster.NodeName);
        await page.GetByTestId("confirm-yes").ClickAsync();
        await Expect(page.GetByTestId("worker-status")).ToHaveTextAsync("offline", new() { Timeout = Ui.LiveTimeout });
        watched.AssertNoProblems();
    }
}
