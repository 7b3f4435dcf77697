using Celeriac.BrowserTests.Support;
using Microsoft.Playwright;

namespace Celeriac.BrowserTests;

public sealed class ChromiumTests(BrowserFixture browser)
{
    [Fact]
    public void DebianChromiumIsInstalled() => Assert.True(File.Exists(BrowserFixture.ChromiumPath), "scripts/provision.sh installs Debian's chromium");

    [Fact]
    public async Task Chromium_RendersAPage_ThroughPlaywrightsDriver()
    {
        await using WatchedPage watched = await browser.NewPageAsync();
        await watched.Page.SetContentAsync("<p id='x'>hello</p><script>document.getElementById('x').textContent += ' world'</script>");
        await Assertions.Expect(watched.Page.Locator("#x")).ToHaveTextAsync("hello world");
        watched.AssertNoProblems();
    }
}
