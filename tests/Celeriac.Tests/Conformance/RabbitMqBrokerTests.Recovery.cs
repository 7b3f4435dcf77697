using System.Text;
using Celeriac.RabbitMQ;
using Celeriac.TestServers;
using Celeriac.Transport;

namespace Celeriac.Tests.Conformance;

/// <summary>The broker drops the connection while a delivery is held: what the client's automatic recovery leaves behind.</summary>
public sealed partial class RabbitMqBrokerTests
{
    [Fact]
    public async Task ConnectionClosedByTheBroker_AckOfADeliveryFromBeforeRecovery_AcksNothingElseAndTheChannelGoesOn()
    {
        // A vhost of its own, so that closing its connections touches nothing else on the node.
        string vhost = await rabbit.NewVhostAsync();
        RabbitMqServer server = await rabbit.ServerAsync();
        const string Queue = "recovery";
        await using var transport = new RabbitMqTransport(new TransportOptions { Url = new Uri(server.Url(vhost)) });
        await transport.PublishAsync("", Queue, [Message("a"), Message("b")], Ct);

        using var within = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        within.CancelAfter(TimeSpan.FromSeconds(60));
        await using IAsyncEnumerator<Delivery> deliveries = transport.ConsumeAsync(new ConsumeOptions { Queues = [Queue], Prefetch = 1 }, within.Token).GetAsyncEnumerator(within.Token);
        Delivery old = await NextAsync(deliveries, "a", redelivered: false);

        // The broker closes the connection; the client reconnects, reopens the channel and consumes again, and the
        // broker, which took 'a' back with the old channel, delivers it again: that is the recovery.
        Assert.Contains("Closed 1 connections", await server.CtlAsync("close_all_connections", "-p", vhost, "test"), StringComparison.Ordinal);
        Delivery again = await NextAsync(deliveries, "a", redelivered: true);

        // The old delivery's tag belongs to the lost channel: acking it now must neither fail nor ack what the
        // recovered channel delivered under a tag of the same number.
        await old.AckAsync(within.Token);
        await transport.PublishAsync("", Queue, [Message("c")], within.Token);
        await again.AckAsync(within.Token);
        await (await NextAsync(deliveries, "b", redelivered: false)).AckAsync(within.Token);
        await (await NextAsync(deliveries, "c", redelivered: false)).AckAsync(within.Token);

        // All three acks reached the broker on an open channel: nothing ready, nothing unacked.
        string counts = "";
        while (!within.IsCancellationRequested && counts != $"{Queue}\t0\t0")
        {
            await Task.Delay(200, within.Token);
            counts = (await server.CtlAsync("list_queues", "-p", vhost, "-q", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged")).Trim();
        }

        Assert.Equal($"{Queue}\t0\t0", counts);
    }

    private static TransportMessage Message(string text) => new() { Body = Encoding.UTF8.GetBytes(text) };

    /// <summary>The next delivery (within the enumerator's time limit), checked to be <paramref name="text"/>.</summary>
    private static async Task<Delivery> NextAsync(IAsyncEnumerator<Delivery> deliveries, string text, bool redelivered)
    {
        Assert.True(await deliveries.MoveNextAsync(), "the consume ended");
        Delivery d = deliveries.Current;
        Assert.Equal((text, redelivered), (Encoding.UTF8.GetString(d.Message!.Body.Span), d.Redelivered));
        return d;
    }
}
