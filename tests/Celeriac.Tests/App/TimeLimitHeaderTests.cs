using Celeriac.Protocol;
using Celeriac.Transport;

namespace Celeriac.Tests.App;

/// <summary>The <c>timelimit</c> header a Celeriac client writes, as Celery's <c>apply_async</c> does.</summary>
public sealed class TimeLimitHeaderTests
{
    [Fact]
    public async Task BuildMessage_TaskWithTimeLimits_HeaderCarriesThemAndCallOptionsWin()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://" + Guid.NewGuid().ToString("N") });
        app.Task("limits.add", (int x, int y) => x + y, new TaskOptions { TimeLimit = TimeSpan.FromSeconds(30), SoftTimeLimit = TimeSpan.FromSeconds(20) });

        Assert.Equal((30.0, 20.0), HeaderOf(app.BuildMessage("limits.add", [1, 2], null, null, out _)));
        Assert.Equal((30.0, 0.5), HeaderOf(app.BuildMessage("limits.add", [1, 2], null, new ApplyOptions { SoftTimeLimit = TimeSpan.FromSeconds(0.5) }, out _)));
        Assert.Equal((null, null), HeaderOf(app.BuildMessage("limits.other", [1, 2], null, null, out _)));
    }

    private static (double? Hard, double? Soft) HeaderOf(TransportMessage message)
    {
        Assert.True(TaskMessage.TryDecode(message, out TaskMessage? decoded, out _, out _, out string? error), error);
        using (decoded)
        {
            return (decoded!.Headers.HardTimeLimit, decoded.Headers.SoftTimeLimit);
        }
    }
}
