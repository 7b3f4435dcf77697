using System.Diagnostics;
using Celeriac.Redis;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;
using Celeriac.Transport;

namespace Celeriac.Tests.Redis;

/// <summary>
/// An idle Redis consumer waits in a blocking pop of a second (kombu's BRPOP). Stopping it ends that pop at once
/// (CLIENT UNBLOCK) instead of waiting out the second: a worker's warm stop, or a test's, does not idle.
/// </summary>
public sealed class RedisConsumerStopTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await redis.Server.CliAsync("FLUSHALL");

    [Fact]
    public async Task Stop_WhileItsBlockingPopWaits_EndsAtOnce()
    {
        // Five stops at random points of the pop's second: without the unblock, each would wait out the rest of it.
        for (int i = 0; i < 5; i++)
        {
            await using var transport = new RedisTransport(new TransportOptions { Url = new Uri(redis.Server.Url(0)) });
            await transport.DeclareQueueAsync(new QueueDeclaration("idle", "idle", "idle"), Ct);
            using var stop = new CancellationTokenSource();
            IAsyncEnumerator<Delivery> consumer = transport.ConsumeAsync(new ConsumeOptions { Queues = ["idle"], Prefetch = 4 }, stop.Token).GetAsyncEnumerator(Ct);
            ValueTask<bool> next = consumer.MoveNextAsync();
            Assert.True(
                await Poll.UntilAsync(async () => (await redis.Server.CliAsync("CLIENT", "LIST")).Contains("cmd=brpop", StringComparison.Ordinal), TimeSpan.FromSeconds(5)),
                "the consumer never waited in BRPOP");
            await Task.Delay(Random.Shared.Next(0, 800), Ct);

            var clock = Stopwatch.StartNew();
            await stop.CancelAsync();
            try
            {
                Assert.False(await next);
            }
            catch (OperationCanceledException)
            {
            }

            await consumer.DisposeAsync();
            Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromMilliseconds(500));
        }
    }
}
