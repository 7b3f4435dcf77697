using Celeriac;

namespace Shop;

/// <summary>The payment provider is down for a moment: worth retrying.</summary>
public sealed class PaymentGatewayDownException(string message) : Exception(message);

/// <summary>The shop's tasks, registered on an app (a real service would use [CeleriacTask] and AddCeleriac).</summary>
public static class ShopTasks
{
    /// <summary>Registers the tasks; the payment gateway refuses <paramref name="gatewayFailures"/> times before it accepts.</summary>
    public static void Register(CeleriacApp app, int gatewayFailures = 0)
    {
        int refused = 0;
        app.Task("shop.charge", async (string orderId, decimal amount, TaskContext ctx) =>
        {
            if (Interlocked.Increment(ref refused) <= gatewayFailures)
            {
                // Celery's self.retry(countdown=600): try again in ten minutes.
                throw await ctx.RetryAsync(new PaymentGatewayDownException("gateway busy"), countdown: TimeSpan.FromMinutes(10));
            }

            return $"receipt-{orderId}-{amount}";
        });
        app.Task("shop.ship", (string receipt) => receipt.Replace("receipt", "parcel", StringComparison.Ordinal));
        app.Task("shop.notify", (string parcel) => $"mailed {parcel}");
    }
}

/// <summary>User code that sends tasks: it depends on <see cref="ICeleriacClient"/>, so its tests need no broker.</summary>
public sealed class CheckoutService(ICeleriacClient celeriac)
{
    public async Task<string> CheckoutAsync(string orderId, decimal amount, CancellationToken ct)
    {
        if (amount <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(amount), "nothing to charge");
        }

        AsyncResult sent = await celeriac.SendTaskAsync("shop.charge", [orderId, amount], ct: ct);
        return sent.Id;
    }
}
