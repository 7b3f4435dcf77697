using System.Net;
using System.Text.RegularExpressions;
using Celeriac.Cli;
using Celeriac.Tests.Cli;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Dashboard;

/// <summary><c>celeriac dashboard</c>: loopback by default, refuses another address unprotected, serves until stopped.</summary>
public sealed partial class DashboardCliTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [GeneratedRegex(@"Celeriac dashboard at (http://[^ ]+/) ")]
    private static partial Regex Address();

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("192.0.2.10")]
    [InlineData("::")]
    public async Task NonLoopbackAddress_WithoutAuthOrReadOnly_RefusesWithUsageExit(string address)
    {
        CliRun run = await CliRun.RunAsync(["dashboard", "--address", address, "--port", "0", "--store", "memory://", "-b", CliRun.NewBroker()], ct: Ct);
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains($"refusing to serve the dashboard on {address} (not loopback) without --basic-auth user:pass or --read-only", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--store", "mongodb://x", "--store: unknown store URL")]
    [InlineData("--store", "redis://127.0.0.1:6379/x", "--store: bad Redis store URL: the database 'x' is not a number")]
    [InlineData("--store", "postgresql://u@127.0.0.1/db?nosuchoption=1", "--store: bad PostgreSQL store URL: unknown option 'nosuchoption'")]
    [InlineData("--address", "not-an-ip", "--address must be an IP address")]
    [InlineData("--port", "70000", "--port must be between 0 and 65535")]
    public async Task BadFlag_IsAUsageErrorWithTheReason(string flag, string value, string message)
    {
        CliRun run = await CliRun.RunAsync(["dashboard", flag, value, "-b", CliRun.NewBroker()], ct: Ct);
        Assert.Equal(ExitCodes.Usage, run.ExitCode);
        Assert.Contains(message, run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Loopback_ServesUnderPrefixWithAuth_UntilStopped()
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var output = new StringWriter();
        using var error = new StringWriter();
        Task<int> running = CeleriacCli.RunAsync(
            ["dashboard", "--port", "0", "--url-prefix", "/flower", "--basic-auth", "a:b", "--store", "memory://", "-b", CliRun.NewBroker()],
            null, new StringReader(""), output, error, stop.Token);
        string? url = null;
        Assert.True(await Poll.UntilAsync(() => (url = Address().Match(output.ToString()) is { Success: true } m ? m.Groups[1].Value : null) is not null || running.IsCompleted, TimeSpan.FromSeconds(15)),
            "no address printed: " + output + error);
        Assert.NotNull(url);
        Assert.StartsWith("http://127.0.0.1:", url, StringComparison.Ordinal);
        Assert.EndsWith("/flower/", url, StringComparison.Ordinal);

        using var client = new HttpClient { BaseAddress = new Uri(url) };
        using HttpResponseMessage anonymous = await client.GetAsync("api/dashboard", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        client.DefaultRequestHeaders.Authorization = DashboardHost.Basic("a:b");
        using HttpResponseMessage ok = await client.GetAsync("api/dashboard", Ct);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await running.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None));
    }

    [Fact]
    public async Task RedisStore_ListsWhatAnEarlierDashboardStored()
    {
        await using var redis = await Celeriac.TestServers.RedisServer.StartAsync(Ct);
        string store = redis.Url(0) + "?prefix=cli-" + Guid.NewGuid().ToString("N") + ":";
        // Stamped now: the dashboard prunes tasks older than its MaxAge (7 days) as it starts.
        await using (Celeriac.Dashboard.Store.IDashboardStore earlier = await Celeriac.Dashboard.Store.DashboardStores.OpenAsync(store, Ct))
        {
            await earlier.WriteAsync(new Celeriac.Dashboard.Store.DashboardBatch(
                [new Celeriac.Dashboard.Store.DashboardTask { Uuid = "before-restart", State = "SUCCESS", Name = "tasks.add", Timestamp = TimeProvider.System.GetUtcNow().ToUnixTimeSeconds() }], [], []), Ct);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var output = new StringWriter();
        using var error = new StringWriter();
        Task<int> running = CeleriacCli.RunAsync(["dashboard", "--port", "0", "--store", store, "-b", CliRun.NewBroker()], null, new StringReader(""), output, error, stop.Token);
        string? url = null;
        Assert.True(await Poll.UntilAsync(() => (url = Address().Match(output.ToString()) is { Success: true } m ? m.Groups[1].Value : null) is not null || running.IsCompleted, TimeSpan.FromSeconds(15)),
            "no address printed: " + output + error);

        using var client = new HttpClient { BaseAddress = new Uri(url!) };
        string tasks = await client.GetStringAsync("api/dashboard/tasks", Ct);
        Assert.Contains("\"before-restart\"", tasks, StringComparison.Ordinal);

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await running.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None));
    }
}
