using System.Threading.Channels;
using Celeriac.RabbitMQ;
using Celeriac.TestServers;
using Celeriac.Transport;

namespace Celeriac.Tests.Conformance;

/// <summary>The catch-up's fence queue (see <see cref="RabbitMqTransport.CatchUpAsync"/>) gone from under it.</summary>
public sealed partial class RabbitMqBrokerTests
{
    [Fact]
    public async Task CatchUp_FenceQueueDeletedByHand_EndsThatConsumeOnly_AndTheNextCatchesUpOnANewOne()
    {
        string vhost = await rabbit.NewVhostAsync();
        RabbitMqServer server = await rabbit.ServerAsync();
        const string Queue = "fenced";
        await using var transport = new RabbitMqTransport(new TransportOptions { Url = new Uri(server.Url(vhost)) });
        using var within = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        within.CancelAfter(TimeSpan.FromSeconds(60));

        (Task firstLoop, ChannelReader<Delivery> first) = ReadAll(transport, Queue, within.Token);
        await transport.PublishAsync("", Queue, [Message("a")], within.Token);
        await (await first.ReadAsync(within.Token)).AckAsync(within.Token);
        await transport.CatchUpAsync(within.Token);
        string fence = Assert.Single(await FenceQueuesAsync(server, vhost));

        // Deleted by hand: the next catch-up's consume on it fails, the broker closes that consumer's channel, and
        // the catch-up still completes (the inspect answers with what the worker holds).
        await server.CtlAsync("delete_queue", "-p", vhost, fence);
        await transport.CatchUpAsync(within.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(10), within.Token);
        var ended = await Assert.ThrowsAsync<ChannelClosedException>(() => firstLoop.WaitAsync(TimeSpan.FromSeconds(10), within.Token));
        Assert.Contains("404 NOT_FOUND", Assert.IsType<InvalidOperationException>(ended.InnerException).Message, StringComparison.Ordinal);

        // The worker consumes again, and its catch-ups work on a new fence queue.
        (Task secondLoop, ChannelReader<Delivery> second) = ReadAll(transport, Queue, within.Token);
        await transport.PublishAsync("", Queue, [Message("b")], within.Token);
        await (await second.ReadAsync(within.Token)).AckAsync(within.Token);
        await transport.PublishAsync("", Queue, [Message("c")], within.Token);
        await transport.CatchUpAsync(within.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(10), within.Token);
        Assert.True(second.TryRead(out Delivery? c), "'c' was not handed over when the catch-up completed");
        Assert.Equal("c", System.Text.Encoding.UTF8.GetString(c!.Message!.Body.Span));
        await c.AckAsync(within.Token);
        Assert.NotEqual(fence, Assert.Single(await FenceQueuesAsync(server, vhost)));
        Assert.False(secondLoop.IsCompleted);
    }

    /// <summary>A consume that hands each delivery to a channel as it comes (as the worker's consumer reserves it).</summary>
    private static (Task Loop, ChannelReader<Delivery> Got) ReadAll(RabbitMqTransport transport, string queue, CancellationToken ct)
    {
        var got = Channel.CreateUnbounded<Delivery>();
        Task loop = Task.Run(
            async () =>
            {
                await foreach (Delivery d in transport.ConsumeAsync(new ConsumeOptions { Queues = [queue], Prefetch = 4 }, ct))
                {
                    got.Writer.TryWrite(d);
                }
            },
            ct);
        return (loop, got.Reader);
    }

    private static async Task<string[]> FenceQueuesAsync(RabbitMqServer server, string vhost) =>
        [.. (await server.CtlAsync("list_queues", "-p", vhost, "-q", "--no-table-headers", "name"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(q => q.StartsWith("celeriac.fence.", StringComparison.Ordinal))];
}
