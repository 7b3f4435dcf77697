using Microsoft.Playwright;

[assembly: AssemblyFixture(typeof(Celeriac.BrowserTests.Support.BrowserFixture))]

namespace Celeriac.BrowserTests.Support;

/// <summary>
/// One headless Debian chromium for the test assembly, driven by Playwright's bundled node driver (nothing is
/// downloaded: the browser is <c>/usr/bin/chromium</c>, which <c>scripts/provision.sh</c> installs). Each test takes
/// a fresh context from <see cref="NewPageAsync"/>.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    /// <summary>Debian's chromium.</summary>
    public const string ChromiumPath = "/usr/bin/chromium";

    private IPlaywright? _playwright;
    private IBrowser? _browser;

    /// <inheritdoc />
    public async ValueTask InitializeAsync()
    {
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Timeout = 30_000,
            // No --user-data-dir: Playwright refuses it for Launch and gives every launch a fresh temporary profile.
            Args =
            [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        });
    }

    /// <summary>A page in a fresh context (1280×800) whose console errors and failed requests are recorded.</summary>
    public async Task<WatchedPage> NewPageAsync(BrowserNewContextOptions? options = null)
    {
        IBrowser browser = _browser ?? throw new InvalidOperationException("not started");
        options ??= new BrowserNewContextOptions();
        options.ViewportSize ??= new ViewportSize { Width = 1280, Height = 800 };
        IBrowserContext context = await browser.NewContextAsync(options);
        IPage page = await context.NewPageAsync();
        return new WatchedPage(context, page);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
    }
}
