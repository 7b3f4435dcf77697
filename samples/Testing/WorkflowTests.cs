using System.Diagnostics;
using Celeriac;
using Celeriac.Testing;

namespace Shop.Tests;

/// <summary>
/// (b) A chain run through the test harness: an in-process worker on an in-memory broker, on fake time. The charge is
/// refused twice and retried ten minutes later each time; the harness moves fake time, so the test takes milliseconds.
/// </summary>
public sealed class WorkflowTests
{
    [Fact]
    public async Task ChargeShipNotify_ChargeRetriedTwice_CompletesWithoutSleeping()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var app = new CeleriacApp(new CeleriacOptions());
        ShopTasks.Register(app, gatewayFailures: 2);
        await using var harness = new CeleriacTestHarness(app);
        DateTimeOffset start = harness.Time.GetUtcNow();
        var clock = Stopwatch.StartNew();

        Signature workflow = app.Sig("shop.charge", "A-17", 25) | app.Sig("shop.ship") | app.Sig("shop.notify");
        AsyncResult result = await app.ApplyAsync(workflow, ct: ct);

        Assert.True(await harness.Succeeded.Any("shop.notify", t => t.Result<string>() == "mailed parcel-A-17-25", ct));
        Assert.Equal(2, harness.Retried.Snapshot().Count);
        Assert.All(harness.Retried.Snapshot(), r => Assert.IsType<PaymentGatewayDownException>(r.Exception));
        Assert.Equal("mailed parcel-A-17-25", await result.GetAsync<string>(TimeSpan.FromSeconds(10), ct));
        Assert.True(harness.Time.GetUtcNow() - start >= TimeSpan.FromMinutes(20), "two ten-minute retries passed on the fake clock");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"and not on the real one ({clock.Elapsed})");
    }

    [Fact]
    public async Task Checkout_NoShippingWithoutACharge()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var app = new CeleriacApp(new CeleriacOptions());
        ShopTasks.Register(app);
        await using var harness = new CeleriacTestHarness(app) { InactivityTimeout = TimeSpan.FromMilliseconds(300) };

        await app.SendTaskAsync("shop.charge", ["A-19", 10], ct: ct);

        Assert.True(await harness.Succeeded.Any("shop.charge", ct: ct)); // the harness saw the work
        Assert.False(await harness.Sent.Any("shop.ship", ct: ct));       // and nothing shipped without a chain
    }
}
