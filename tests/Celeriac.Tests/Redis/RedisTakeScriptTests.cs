using System.Text.Json;
using Celeriac.Redis;
using Celeriac.Tests.Conformance;
using Celeriac.Transport;

namespace Celeriac.Tests.Redis;

/// <summary>
/// The take script notes each popped envelope in kombu's unacked hash under its delivery_tag, with its exchange and
/// routing key. It finds those fields by a plain search where it can and decodes the envelope where it cannot; each
/// envelope here must be noted exactly as decoding it would note it.
/// </summary>
public sealed class RedisTakeScriptTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await redis.Server.CliAsync("FLUSHALL");

    public static TheoryData<string, string, string?, string, string> Envelopes => new()
    {
        // name, envelope, tag (null: a generated one), exchange, routing key
        {
            "Python's spacing",
            """{"body": "W10=", "content-encoding": "utf-8", "content-type": "application/json", "headers": {"task": "t"}, "properties": {"delivery_info": {"exchange": "ex", "routing_key": "rk"}, "delivery_tag": "tag-1"}}""",
            "tag-1", "ex", "rk"
        },
        {
            "compact, empty exchange",
            """{"body":"W10=","headers":{"task":"t"},"properties":{"delivery_info":{"exchange":"","routing_key":"celery"},"delivery_tag":"tag-2"}}""",
            "tag-2", "", "celery"
        },
        {
            "a header also named delivery_tag",
            """{"body":"W10=","headers":{"delivery_tag":"from-a-header"},"properties":{"delivery_info":{"exchange":"","routing_key":"celery"},"delivery_tag":"tag-3"}}""",
            "tag-3", "", "celery"
        },
        {
            "an escaped routing key",
            """{"body":"W10=","headers":{},"properties":{"delivery_info":{"exchange":"e","routing_key":"r\"k"},"delivery_tag":"tag-4"}}""",
            "tag-4", "e", "r\"k"
        },
        {
            "a non-string exchange",
            """{"body":"W10=","headers":{},"properties":{"delivery_info":{"exchange":7,"routing_key":"rk"},"delivery_tag":"tag-5"}}""",
            "tag-5", "", "q"
        },
        {
            "no delivery_tag",
            """{"body":"W10=","headers":{},"properties":{"delivery_info":{"exchange":"","routing_key":"celery"}}}""",
            null, "", "celery"
        },
        {
            "an empty delivery_tag",
            """{"body":"W10=","headers":{},"properties":{"delivery_info":{"exchange":"","routing_key":"celery"},"delivery_tag":""}}""",
            null, "", "celery"
        },
        {
            "not JSON",
            "\"delivery_tag\": \"looks-like-one\" but is not an envelope",
            null, "", "q"
        },
    };

    [Theory]
    [MemberData(nameof(Envelopes))]
    public async Task Take_NotesEnvelopeUnderItsTag_WithItsExchangeAndRoutingKey(string name, string envelope, string? tag, string exchange, string routingKey)
    {
        Assert.NotEmpty(name);
        await redis.Server.CliAsync("LPUSH", "q", envelope);
        await using var transport = new RedisTransport(new TransportOptions { Url = new Uri(redis.Server.Url(0)) });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(10));
        await using IAsyncEnumerator<Delivery> deliveries = transport.ConsumeAsync(new ConsumeOptions { Queues = ["q"], Prefetch = 4 }, stop.Token).GetAsyncEnumerator(stop.Token);
        Assert.True(await deliveries.MoveNextAsync());

        string[] lines = (await redis.Server.CliAsync("HGETALL", "unacked")).TrimEnd('\n').Split('\n');
        Assert.Equal(2, lines.Length);
        if (tag is null)
        {
            Assert.StartsWith("celeriac-", lines[0], StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(tag, lines[0]);
        }

        Assert.Equal(lines[0], (await redis.Server.CliAsync("ZRANGE", "unacked_index", "0", "-1")).TrimEnd('\n'));
        if (!envelope.StartsWith('{'))
        {
            // Kept as it came, so that nothing is lost; the worker rejects it and the rejection removes the entry.
            Assert.StartsWith("[" + envelope + ", ", lines[1], StringComparison.Ordinal);
            return;
        }

        using JsonDocument entry = JsonDocument.Parse(lines[1]);
        Assert.Equal(envelope, entry.RootElement[0].GetRawText());
        Assert.Equal(exchange, entry.RootElement[1].GetString());
        Assert.Equal(routingKey, entry.RootElement[2].GetString());
    }

    // kombu's list for priority step 3 of q1: the queue's name, '\x06\x16', then the step.
    private const string LowerStep = "q1\u0006\u00163";

    [Fact]
    public async Task Take_OfEightFromTwoFullQueues_TakesFourFromEach_WhilePriorityStepsStillGoInOrder()
    {
        // q1 also has a message of a lower priority step (a higher number): it comes only once step 0 is empty.
        for (int i = 0; i < 30; i++)
        {
            await redis.Server.CliAsync("LPUSH", "q1", Envelope("q1-" + i, "q1"));
            await redis.Server.CliAsync("LPUSH", "q2", Envelope("q2-" + i, "q2"));
        }

        await redis.Server.CliAsync("LPUSH", LowerStep, Envelope("q1-p3", "q1"));
        await using var transport = new RedisTransport(new TransportOptions { Url = new Uri(redis.Server.Url(0)) });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(10));
        await using IAsyncEnumerator<Delivery> deliveries = transport.ConsumeAsync(new ConsumeOptions { Queues = ["q1", "q2"], Prefetch = 8 }, stop.Token).GetAsyncEnumerator(stop.Token);
        var queues = new List<string>();
        for (int i = 0; i < 8; i++)
        {
            Assert.True(await deliveries.MoveNextAsync());
            queues.Add(deliveries.Current.Queue);
        }

        // One take (nothing was acked): a take that served its first queue whole would have taken eight from q1.
        Assert.Equal(4, queues.Count(q => q == "q1"));
        Assert.Equal(4, queues.Count(q => q == "q2"));
        Assert.Equal("1", (await redis.Server.CliAsync("LLEN", LowerStep)).Trim());
    }

    private static string Envelope(string tag, string queue) =>
        "{\"body\":\"W10=\",\"headers\":{\"task\":\"t\"},\"properties\":{\"delivery_tag\":\"" + tag
        + "\",\"delivery_info\":{\"exchange\":\"\",\"routing_key\":\"" + queue + "\"}}}";
}
