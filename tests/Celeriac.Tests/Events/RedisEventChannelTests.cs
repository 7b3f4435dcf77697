using System.Collections.Concurrent;
using System.Text.Json;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;
using StackExchange.Redis;

namespace Celeriac.Tests.Events;

/// <summary>
/// On a real redis-server, what a Celeriac worker with <c>-E</c> and a client with <c>task_send_sent_event</c> PUBLISH,
/// read by a plain Redis subscriber as Celery's capture was (Redis MONITOR of PUBLISH): the same channels
/// (<c>/&lt;db&gt;.celeryev/&lt;routing key&gt;</c>) and the same kombu envelope around each event body.
/// </summary>
public sealed class RedisEventChannelTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WorkerAndClient_PublishOnCelerysChannels_WithCelerysEnvelope()
    {
        const int Db = 7;
        await using ConnectionMultiplexer raw = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Server.Port}");
        var published = new ConcurrentQueue<(string Channel, string Payload)>();
        ChannelMessageQueue subscription = await raw.GetSubscriber().SubscribeAsync(RedisChannel.Pattern($"/{Db}.celeryev/*"));
        subscription.OnMessage(m => published.Enqueue((m.Channel.ToString(), m.Message.ToString())));

        string queue = "redis-events-" + Guid.NewGuid().ToString("N")[..8];
        string node = "redis-events-" + Guid.NewGuid().ToString("N")[..8] + "@test";
        CeleriacApp workerApp = RunningWorker.NewApp(o =>
        {
            o.BrokerUrl = redis.Server.Url(Db);
            o.DefaultQueue = queue;
            o.NodeName = node;
            o.TaskEvents = true;
        });
        workerApp.Task("wireapp.add", (long x, long y) => x + y);
        await using var client = new CeleriacApp(new CeleriacOptions { BrokerUrl = redis.Server.Url(Db), DefaultQueue = queue, TaskSendSentEvent = true });
        await using (RunningWorker worker = await RunningWorker.StartAsync(workerApp))
        {
            AsyncResult result = await client.SendTaskAsync("wireapp.add", [2, 3], ct: Ct);
            Assert.Equal(5, await result.GetAsync<long>(TimeSpan.FromSeconds(15), Ct));
            Assert.True(await Poll.UntilAsync(() => published.Any(p => Body(p.Payload).Contains("task-succeeded", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)));
        }

        Assert.True(await Poll.UntilAsync(() => published.Any(p => p.Channel.EndsWith("/worker.offline", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)), "no worker-offline");
        await subscription.UnsubscribeAsync();

        (string Channel, string Payload)[] ours = [.. published.Where(p => Body(p.Payload).Contains(node, StringComparison.Ordinal) || p.Channel.EndsWith("/task.sent", StringComparison.Ordinal))];
        Assert.Equal(
            [$"/{Db}.celeryev/task.multi", $"/{Db}.celeryev/task.sent", $"/{Db}.celeryev/worker.offline", $"/{Db}.celeryev/worker.online"],
            ours.Select(p => p.Channel).Where(c => !c.EndsWith("/worker.heartbeat", StringComparison.Ordinal)).Distinct().Order(StringComparer.Ordinal));

        // Each PUBLISH payload is kombu's envelope with the keys Celery's has, for the same channel.
        foreach (string file in WireSamples.FileNames.Where(f => f.StartsWith("redis-event-", StringComparison.Ordinal)))
        {
            using JsonDocument doc = WireSamples.Load(file);
            JsonElement captured = doc.RootElement.GetProperty("events")[0];
            string channel = captured.GetProperty("args")[1].GetString()!.Replace("/0.", $"/{Db}.", StringComparison.Ordinal);
            if (ours.FirstOrDefault(p => p.Channel == channel) is not { Payload: { } payload })
            {
                Assert.Equal($"/{Db}.celeryev/worker.heartbeat", channel); // the run may end before the first
                continue;
            }

            JsonElement celery = JsonAssert.Parse(captured.GetProperty("args")[2].GetString()!);
            JsonElement mine = JsonAssert.Parse(payload);
            Assert.Equal(JsonAssert.Keys(celery), JsonAssert.Keys(mine));
            Assert.Equal(JsonAssert.Keys(celery.GetProperty("properties")), JsonAssert.Keys(mine.GetProperty("properties")));
            JsonAssert.Equal(celery.GetProperty("properties").GetProperty("delivery_info"), mine.GetProperty("properties").GetProperty("delivery_info"), file);
        }
    }

    [Fact]
    public async Task SubscriberWithTopicBinding_HearsOnlyItsKeys_AsKombusFanoutPatterns()
    {
        // A worker's gossip queue is bound to worker.#: kombu PSUBSCRIBEs /<db>.celeryev/worker.*, not every event.
        await using var transport = new Celeriac.Redis.RedisTransport(new Celeriac.Transport.TransportOptions { Url = new Uri(redis.Server.Url(8)) });
        var heard = new ConcurrentQueue<string>();
        await using IAsyncDisposable gossip = await transport.SubscribeAsync("celeryev", m =>
        {
            heard.Enqueue(m.RoutingKey);
            return ValueTask.CompletedTask;
        }, new Celeriac.Transport.SubscriberBinding("celeryev.gossip", "worker.#"), Ct);

        foreach (string key in (string[])["task.multi", "worker.heartbeat", "task.sent", "worker.offline"])
        {
            await transport.PublishAsync("celeryev", key, [Celeriac.Events.EventMessages.Message("h", "{}"u8.ToArray())], Ct);
        }

        Assert.True(await Poll.UntilAsync(() => heard.Count >= 2, TimeSpan.FromSeconds(10)));
        await Task.Delay(200, Ct);
        Assert.Equal(["worker.heartbeat", "worker.offline"], heard);
    }

    private static string Body(string payload)
    {
        try
        {
            return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(JsonAssert.Parse(payload).GetProperty("body").GetString()!));
        }
        catch (Exception e) when (e is FormatException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return "";
        }
    }
}
