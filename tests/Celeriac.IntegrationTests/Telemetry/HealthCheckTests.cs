using System.Diagnostics;
using Celeriac.TestServers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Celeriac.IntegrationTests.Telemetry;

/// <summary>
/// <c>AddCeleriacHealthChecks()</c> against a real broker with a hosted worker: healthy; the broker stopped, unhealthy
/// within 5 s (the checks are bounded, so the report itself comes quickly); the broker back, healthy again.
/// </summary>
public abstract class HealthCheckSuite : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected abstract string BrokerUrl { get; }

    protected abstract string? BackendUrl { get; }

    /// <summary>The URL as the descriptions must show it: the password masked.</summary>
    protected abstract string MaskedBrokerUrl { get; }

    public abstract ValueTask InitializeAsync();

    public abstract ValueTask DisposeAsync();

    protected abstract Task StopBrokerAsync();

    protected abstract Task StartBrokerAgainAsync();

    [Fact]
    public async Task HealthChecks_BrokerStoppedAndBack_UnhealthyWithin5SecondsThenHealthy()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCeleriac(o =>
        {
            o.BrokerUrl = BrokerUrl;
            o.ResultBackend = BackendUrl;
            o.HeartbeatInterval = TimeSpan.FromSeconds(1);
            o.NodeName = "health@" + Guid.NewGuid().ToString("N")[..6];
        }).AddWorker();
        services.AddHealthChecks().AddCeleriacHealthChecks(o => o.Timeout = TimeSpan.FromSeconds(1));
        await using ServiceProvider provider = services.BuildServiceProvider();
        HealthCheckService health = provider.GetRequiredService<HealthCheckService>();
        // The worker, and what AddHealthChecks hosts (its publisher, idle without publishers).
        List<IHostedService> hosted = [.. provider.GetServices<IHostedService>()];
        foreach (IHostedService service in hosted)
        {
            await service.StartAsync(Ct);
        }

        try
        {
            HealthReport healthy = await UntilAsync(health, HealthStatus.Healthy, s_wait);
            Assert.Equal(HealthStatus.Healthy, healthy.Status);
            Assert.Equal(["celeriac-broker", "celeriac-result-backend", "celeriac-worker"], healthy.Entries.Keys.Order());
            Assert.Contains("answered in", healthy.Entries["celeriac-broker"].Description, StringComparison.Ordinal);
            Assert.Contains("consumes celery", healthy.Entries["celeriac-worker"].Description, StringComparison.Ordinal);

            await StopBrokerAsync();
            var clock = Stopwatch.StartNew();
            HealthReport down = await UntilAsync(health, HealthStatus.Unhealthy, TimeSpan.FromSeconds(10));
            TimeSpan tookToNotice = clock.Elapsed;
            Assert.Equal(HealthStatus.Unhealthy, down.Status);
            Assert.True(tookToNotice < TimeSpan.FromSeconds(5), $"unhealthy only after {tookToNotice.TotalSeconds:0.0} s");
            HealthReportEntry broker = down.Entries["celeriac-broker"];
            Assert.Equal(HealthStatus.Unhealthy, broker.Status);
            Assert.Contains("broker at " + MaskedBrokerUrl, broker.Description, StringComparison.Ordinal);

            // A dead broker does not hang the endpoint: a whole report takes about one timeout.
            clock.Restart();
            HealthReport again = await health.CheckHealthAsync(Ct);
            Assert.Equal(HealthStatus.Unhealthy, again.Status);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"the report took {clock.Elapsed.TotalSeconds:0.0} s");

            await StartBrokerAgainAsync();
            HealthReport back = await UntilAsync(health, HealthStatus.Healthy, s_wait);
            Assert.True(back.Status == HealthStatus.Healthy, Describe(back));
        }
        finally
        {
            foreach (IHostedService service in hosted)
            {
                await service.StopAsync(CancellationToken.None);
            }
        }
    }

    private static async Task<HealthReport> UntilAsync(HealthCheckService health, HealthStatus wanted, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        HealthReport report = await health.CheckHealthAsync(Ct);
        while (report.Status != wanted && clock.Elapsed < timeout)
        {
            await Task.Delay(100, Ct);
            report = await health.CheckHealthAsync(Ct);
        }

        Assert.True(report.Status == wanted, $"not {wanted} after {timeout.TotalSeconds} s: {Describe(report)}");
        return report;
    }

    private static string Describe(HealthReport report) =>
        string.Join("; ", report.Entries.Select(e => $"{e.Key}={e.Value.Status} ({e.Value.Description})"));
}

/// <summary>The health checks on Redis (broker and results).</summary>
public sealed class RedisHealthCheckTests : HealthCheckSuite
{
    private RedisServer _redis = null!;

    protected override string BrokerUrl => _redis.Url(0);

    protected override string? BackendUrl => _redis.Url(1);

    protected override string MaskedBrokerUrl => _redis.Url(0);

    public override async ValueTask InitializeAsync() => _redis = await RedisServer.StartAsync(Ct);

    public override async ValueTask DisposeAsync() => await _redis.DisposeAsync();

    protected override Task StopBrokerAsync() => _redis.StopAsync();

    protected override Task StartBrokerAgainAsync() => _redis.StartAgainAsync(Ct);
}

/// <summary>The health checks on RabbitMQ (broker) with the rpc:// result backend.</summary>
public sealed class RabbitMqHealthCheckTests : HealthCheckSuite
{
    private RabbitMqServer _rabbit = null!;

    protected override string BrokerUrl => _rabbit.Url();

    protected override string? BackendUrl => "rpc://";

    protected override string MaskedBrokerUrl => _rabbit.Url().Replace("guest:guest@", "guest:**@", StringComparison.Ordinal);

    public override async ValueTask InitializeAsync() => _rabbit = await RabbitMqServer.StartAsync(Ct);

    public override async ValueTask DisposeAsync() => await _rabbit.DisposeAsync();

    protected override Task StopBrokerAsync() => _rabbit.StopAsync();

    protected override Task StartBrokerAgainAsync() => _rabbit.StartAgainAsync(Ct);
}
