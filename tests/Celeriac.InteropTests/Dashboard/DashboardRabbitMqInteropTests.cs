using System.Text.Json;
using Celeriac.InteropTests.RabbitMq;

namespace Celeriac.InteropTests.Dashboard;

/// <summary>The dashboard's queues on RabbitMQ: the broker's real length of a queue nobody consumes, and the workers' queues listed.</summary>
[Collection(RabbitMqInteropGroup.Name)]
public sealed class DashboardRabbitMqInteropTests(RabbitMqInteropFixture fx)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Queues_ShowTheBrokersRealLength_AndTheWorkersQueues()
    {
        string queue = "dash-rmq-" + Guid.NewGuid().ToString("N")[..8];
        await using CeleriacApp client = fx.NewApp(o => o.DefaultQueue = queue);
        for (int i = 0; i < 6; i++)
        {
            await client.SendTaskAsync("nobody.consumes", [i], ct: Ct);
        }

        await fx.WaitForReadyMessagesAsync(queue, 6);
        await using InteropDashboard dashboard = await InteropDashboard.StartAsync(new CeleriacOptions { BrokerUrl = fx.Server.Url(), DefaultQueue = queue });
        JsonElement mine = (await dashboard.GetJsonAsync("api/dashboard/queues")).EnumerateArray().Single(q => q.GetProperty("name").GetString() == queue);
        Assert.Equal((6, 6, 0), (mine.GetProperty("messages").GetInt64(), mine.GetProperty("ready").GetInt64(), mine.GetProperty("consumers").GetInt32()));

        // The fixture's Celeriac worker consumes rmq.net: listed from its active_queues once inspected, with one consumer.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        JsonElement net = default;
        while (clock.Elapsed < TimeSpan.FromSeconds(20) && net.ValueKind != JsonValueKind.Object)
        {
            net = (await dashboard.GetJsonAsync("api/dashboard/queues")).EnumerateArray().FirstOrDefault(q => q.GetProperty("name").GetString() == RabbitMqInteropFixture.CeleriacQueue);
            await Task.Delay(100, Ct);
        }

        Assert.Equal(JsonValueKind.Object, net.ValueKind);
        Assert.Equal(JsonValueKind.Number, net.GetProperty("messages").ValueKind);
        await client.Transport.PurgeAsync(queue, Ct);
    }
}
