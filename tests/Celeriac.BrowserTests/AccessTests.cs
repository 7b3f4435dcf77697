using Celeriac.BrowserTests.Support;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Celeriac.BrowserTests;

/// <summary>Read-only mode and basic authentication, as a user meets them.</summary>
public sealed class AccessTests(BrowserFixture browser, RedisFixture redis)
{
    [Fact]
    public async Task ReadOnly_HidesEveryAction_OnEveryPage()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis, new DashboardSettings { ReadOnly = true });
        AsyncResult failed = await cluster.SendAsync("test.fail", ["read-only"]);
        Assert.Equal(TaskStates.Failure, await Ui.FinishedAsync(failed));

        await using WatchedPage watched = await browser.NewPageAsync();
        IPage page = watched.Page;
        ILocator actions = page.Locator(".action, [data-testid=retry-task], [data-testid=revoke-task], [data-testid=terminate-task], [data-testid=retry-all-failed], form, button");
        await Ui.OpenAsync(page, cluster, "workers");
        await Expect(page.GetByTestId("read-only")).ToBeVisibleAsync();

        // Each page is asserted empty of actions only once it shows its data: the same data in a writable
        // dashboard carries actions (PagesTests, RetryTests), so this is the moment they would have appeared.
        await Expect(Ui.WorkerStatus(page, cluster.NodeName)).ToHaveTextAsync("online", new() { Timeout = Ui.LiveTimeout });
        await Expect(actions).ToHaveCountAsync(0);

        await page.GetByRole(AriaRole.Link, new() { Name = cluster.NodeName, Exact = true }).ClickAsync();
        await Expect(page.Locator(".tasklist")).ToContainTextAsync("test.fail", new() { Timeout = Ui.LiveTimeout });
        await Expect(actions).ToHaveCountAsync(0);
        await Expect(page.Locator("input")).ToHaveCountAsync(0);

        await page.GetByTestId("nav-tasks").ClickAsync();
        await Expect(Ui.TaskState(page, failed.Id)).ToHaveTextAsync("FAILURE", new() { Timeout = Ui.LiveTimeout });
        await Expect(actions).ToHaveCountAsync(0);

        await Ui.TaskRow(page, failed.Id).GetByRole(AriaRole.Link, new() { Name = failed.Id[..8] }).ClickAsync();
        await Expect(Ui.TaskField(page, "traceback")).ToContainTextAsync("read-only");
        await Expect(actions).ToHaveCountAsync(0);

        await page.GetByTestId("nav-queues").ClickAsync();
        await Expect(page.Locator("[data-testid=queue-row][data-queue=celery]")).ToBeVisibleAsync(new() { Timeout = Ui.LiveTimeout });
        await Expect(actions).ToHaveCountAsync(0);
        watched.AssertNoProblems();

        // And the server refuses what the pages no longer offer.
        IAPIResponse refused = await page.APIRequest.PostAsync(cluster.Url + "api/task/retry/" + failed.Id);
        Assert.Equal(403, refused.Status);
    }

    [Fact]
    public async Task BasicAuth_RefusesWithoutCredentials_AndServesWithThem()
    {
        await using DashboardCluster cluster = await DashboardCluster.StartAsync(redis, new DashboardSettings { BasicAuth = "admin:s3cret" });

        await using (WatchedPage anonymous = await browser.NewPageAsync())
        {
            // The browser is asked for credentials (a login prompt for a person); with none to give, it shows nothing.
            PlaywrightException refused = await Assert.ThrowsAsync<PlaywrightException>(() => anonymous.Page.GotoAsync(cluster.Url + "#/workers"));
            Assert.Contains("ERR_INVALID_AUTH_CREDENTIALS", refused.Message, StringComparison.Ordinal);
            IAPIResponse index = await anonymous.Page.APIRequest.GetAsync(cluster.Url);
            Assert.Equal(401, index.Status);
            Assert.Contains("Basic", index.Headers.GetValueOrDefault("www-authenticate") ?? "", StringComparison.Ordinal);
            Assert.DoesNotContain("app.js", await index.TextAsync(), StringComparison.Ordinal);
            foreach (string path in new[] { "static/app.js", "api/dashboard", "api/dashboard/workers", "api/dashboard/stream", "api/workers", "metrics" })
            {
                IAPIResponse api = await anonymous.Page.APIRequest.GetAsync(cluster.Url + path);
                Assert.True(api.Status == 401, $"{path} answered {api.Status} without credentials");
            }

            IAPIResponse wrong = await anonymous.Page.APIRequest.GetAsync(cluster.Url + "api/dashboard", new()
            {
                Headers = new Dictionary<string, string> { ["Authorization"] = "Basic " + Convert.ToBase64String("admin:wrong"u8.ToArray()) },
            });
            Assert.Equal(401, wrong.Status);
        }

        await using WatchedPage signedIn = await browser.NewPageAsync(new BrowserNewContextOptions
        {
            HttpCredentials = new HttpCredentials { Username = "admin", Password = "s3cret" },
        });
        await Ui.OpenAsync(signedIn.Page, cluster, "workers");
        await Expect(Ui.WorkerStatus(signedIn.Page, cluster.NodeName)).ToHaveTextAsync("online", new() { Timeout = Ui.LiveTimeout });
        signedIn.AssertNoProblems();
    }
}
