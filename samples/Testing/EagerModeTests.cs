using Celeriac;

namespace Shop.Tests;

/// <summary>(c) Eager mode (Celery's task_always_eager): a call runs in the test itself and its result is there at once.</summary>
public sealed class EagerModeTests
{
    [Fact]
    public async Task EagerChain_RunsInOrderInTheCaller()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using var app = new CeleriacApp(new CeleriacOptions { TaskAlwaysEager = true });
        ShopTasks.Register(app, gatewayFailures: 1); // an eager retry runs again at once

        AsyncResult result = await app.ApplyAsync(app.Sig("shop.charge", "B-2", 5) | app.Sig("shop.ship"), ct: ct);

        Assert.Equal("parcel-B-2-5", await result.GetAsync<string>(TimeSpan.Zero, ct));
    }

    [Fact]
    public async Task EagerPropagates_TheTasksExceptionReachesTheCaller()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { TaskAlwaysEager = true, TaskEagerPropagates = true });
        CeleriacTask divide = app.Task("shop.divide", (int a, int b) => a / b);

        await Assert.ThrowsAsync<DivideByZeroException>(() => divide.DelayAsync(1, 0));
    }
}
