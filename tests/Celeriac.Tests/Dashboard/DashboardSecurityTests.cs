using System.Net;
using System.Text;

namespace Celeriac.Tests.Dashboard;

/// <summary>Basic auth and read-only mode, enforced by the server whatever the pages show.</summary>
public sealed class DashboardSecurityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Every action of Flower's API and the dashboard's, as a browser or a script would post it.</summary>
    public static readonly string[] Actions =
    [
        "api/task/apply/t", "api/task/async-apply/t", "api/task/send-task/t", "api/task/revoke/x", "api/task/rate-limit/t?workername=w&ratelimit=1/s",
        "api/task/timeout/t?workername=w&soft=1", "api/task/retry/x", "api/tasks/retry", "api/worker/shutdown/w", "api/worker/pool/restart/w",
        "api/worker/pool/grow/w", "api/worker/pool/shrink/w", "api/worker/pool/autoscale/w?min=1&max=2", "api/worker/queue/add-consumer/w?queue=q",
        "api/worker/queue/cancel-consumer/w?queue=q",
    ];

    [Fact]
    public async Task BasicAuth_RefusesWithoutOrWrongCredentials_AcceptsEachPair()
    {
        await using DashboardHost host = await DashboardHost.StartAsync("memory://auth-" + Guid.NewGuid().ToString("N"), o => o.BasicAuth = "admin:s3cret, ops:other:colon");
        foreach (string path in (string[])["", "api/dashboard", "api/workers", "api/tasks", "api/dashboard/stream", "metrics", "static/app.js"])
        {
            using HttpResponseMessage anonymous = await host.Client.GetAsync(path, Ct);
            Assert.True(anonymous.StatusCode == HttpStatusCode.Unauthorized, $"GET /{path} without credentials: {anonymous.StatusCode}");
            Assert.Equal("Basic", anonymous.Headers.WwwAuthenticate.Single().Scheme);
        }

        foreach (string pair in (string[])["admin:wrong", "admin:", "nobody:s3cret", "admin:s3cretX"])
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "api/dashboard") { Headers = { Authorization = DashboardHost.Basic(pair) } };
            using HttpResponseMessage wrong = await host.Client.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        using (var garbage = new HttpRequestMessage(HttpMethod.Get, "api/dashboard"))
        {
            garbage.Headers.TryAddWithoutValidation("Authorization", "Basic %%%not-base64");
            using HttpResponseMessage refused = await host.Client.SendAsync(garbage, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        using HttpResponseMessage post = await host.Client.PostAsync("api/task/revoke/x", new StringContent(""), Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, post.StatusCode);

        foreach (string pair in (string[])["admin:s3cret", "ops:other:colon"])
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "api/dashboard") { Headers = { Authorization = DashboardHost.Basic(pair) } };
            using HttpResponseMessage ok = await host.Client.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Contains("\"auth\":true", await ok.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        // A load balancer's probe needs no credentials (as Flower's).
        using HttpResponseMessage health = await host.Client.GetAsync("healthcheck", Ct);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task ReadOnly_RefusesEveryAction_AndSaysSo()
    {
        await using DashboardHost host = await DashboardHost.StartAsync("memory://ro-" + Guid.NewGuid().ToString("N"), o => o.ReadOnly = true);
        foreach (string path in Actions)
        {
            using var body = new StringContent("""{"args": [1, 2]}""", Encoding.UTF8, "application/json");
            using HttpResponseMessage response = await host.Client.PostAsync(path, body, Ct);
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"POST /{path} in read-only mode: {response.StatusCode}");
            Assert.Equal("""{"error":"read-only"}""", await response.Content.ReadAsStringAsync(Ct));
        }

        using HttpResponseMessage info = await host.Client.GetAsync("api/dashboard", Ct);
        Assert.Contains("\"read_only\":true", await info.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        using HttpResponseMessage list = await host.Client.GetAsync("api/tasks", Ct);
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
    }

    [Fact]
    public async Task Options_BadStoreOrCredentials_FailAtStartWithTheReason()
    {
        OptionsValidationExceptionCheck(await Assert.ThrowsAnyAsync<Exception>(() => DashboardHost.StartAsync("memory://x", o => o.StoreUrl = "mongodb://nope")), "StoreUrl");
        OptionsValidationExceptionCheck(await Assert.ThrowsAnyAsync<Exception>(() => DashboardHost.StartAsync("memory://x", o => o.BasicAuth = "nocolon")), "BasicAuth");
        OptionsValidationExceptionCheck(await Assert.ThrowsAnyAsync<Exception>(() => DashboardHost.StartAsync("memory://x", o => o.MaxTasks = 0)), "MaxTasks");
    }

    private static void OptionsValidationExceptionCheck(Exception ex, string what) =>
        Assert.Contains(what, ex.ToString(), StringComparison.Ordinal);
}
