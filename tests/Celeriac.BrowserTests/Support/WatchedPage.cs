using Microsoft.Playwright;

namespace Celeriac.BrowserTests.Support;

/// <summary>
/// A page in its own browser context that records every console error, uncaught page error and failed or
/// 4xx/5xx request, so a test can assert that a user saw none.
/// </summary>
public sealed class WatchedPage : IAsyncDisposable
{
    private readonly List<string> _problems = [];
    private readonly HashSet<string> _allowed = new(StringComparer.Ordinal);

    internal WatchedPage(IBrowserContext context, IPage page)
    {
        Context = context;
        Page = page;
        page.Console += (_, m) =>
        {
            if (m.Type == "error" && !_allowed.Any(a => m.Location.Contains(a, StringComparison.Ordinal)))
            {
                Add($"console error: {m.Text} ({m.Location})");
            }
        };
        page.PageError += (_, e) => Add("page error: " + e);
        page.RequestFailed += (_, r) =>
        {
            // A stream the page closes on navigation or context close is not a failure a user sees.
            if (!r.Url.Contains("/api/dashboard/stream", StringComparison.Ordinal))
            {
                Add($"request failed: {r.Method} {r.Url} {r.Failure}");
            }
        };
        page.Response += (_, r) =>
        {
            if (r.Status >= 400 && !_allowed.Contains(new Uri(r.Url).AbsolutePath))
            {
                Add($"HTTP {r.Status}: {r.Request.Method} {r.Url}");
            }
        };
    }

    /// <summary>The browser context (closed on dispose).</summary>
    public IBrowserContext Context { get; }

    /// <summary>The page.</summary>
    public IPage Page { get; }

    /// <summary>Everything that went wrong so far.</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_problems)
            {
                return [.. _problems];
            }
        }
    }

    /// <summary>
    /// Lets a response with an error status on <paramref name="path"/> pass, with the console line the browser writes
    /// for it (a test that expects the server to refuse).
    /// </summary>
    public void AllowErrorStatus(string path) => _allowed.Add(path);

    /// <summary>Asserts that the page saw no console error, page error or failed request.</summary>
    public void AssertNoProblems() => Assert.True(Problems.Count == 0, "the page saw problems:\n" + string.Join("\n", Problems));

    private void Add(string problem)
    {
        lock (_problems)
        {
            _problems.Add(problem);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await Context.DisposeAsync();
}
