using System.Text.Json;
using Celeriac.Protocol;
using Celeriac.Tests.Support;
using Celeriac.Transport;
using Celeriac.Worker;

namespace Celeriac.Tests.RemoteControl;

/// <summary>
/// Each pidbox request Celery's CLI sent in the golden samples (<c>redis-control-*</c>), given to a Celeriac worker named
/// as Celery's was (<c>wire@vm</c>): its reply goes to the same reply queue with the same ticket, and has the shape of
/// Celery's worker's reply (the same text for ping and revoke, the same keys for active and stats).
/// </summary>
public sealed class GoldenControlTests
{
    private const string Node = "wire@vm";
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Samples => [.. WireSamples.FileNames.Where(f => f.StartsWith("redis-control-", StringComparison.Ordinal))];

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task CelerysRequest_ToACeleriacWorker_RepliesAsCelerysWorkerDid(string file)
    {
        using JsonDocument sample = WireSamples.Load(file);
        JsonElement published = Assert.Single(sample.RootElement.GetProperty("request").EnumerateArray()).GetProperty("args");
        Assert.True(KombuEnvelope.TryDecode(JsonAssert.Utf8(published[2].GetString()!), out TransportMessage? captured, out string? error), error);
        JsonElement body = JsonAssert.Parse(captured!.Body.Span);
        string method = body.GetProperty("method").GetString()!;
        string replyKey = body.GetProperty("reply_to").GetProperty("routing_key").GetString()!;
        string ticket = body.GetProperty("ticket").GetString()!;

        CeleriacApp app = RunningWorker.NewApp(o => o.NodeName = method == "hello" ? "other@vm" : Node);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task("wireapp.sleep", async (int seconds) =>
        {
            await gate.Task;
            return seconds;
        });
        app.Task("wireapp.add", (int x, int y) => x + y);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        if (method == "active")
        {
            await app.SendTaskAsync("wireapp.sleep", [3], ct: Ct);
            Assert.True(await Poll.UntilAsync(() => worker.Worker.GetRequests(RequestState.Active).Count == 1, s_wait));
        }

        string replyQueue = replyKey + ".reply.celery.pidbox";
        await app.Transport.DeclareQueueAsync(new QueueDeclaration(replyQueue, "reply.celery.pidbox", replyKey, "direct"), Ct);

        // The capture is weeks old: only its expiry is renewed.
        var headers = new Dictionary<string, object?>(captured.Headers, StringComparer.Ordinal) { ["expires"] = app.Options.TimeProvider.GetUtcNow().AddSeconds(30).ToUnixTimeMilliseconds() / 1000.0 };
        await app.Transport.PublishAsync("celery.pidbox", "", [captured with { Headers = headers }], Ct);
        TransportMessage reply = await NextAsync(app.Transport, replyQueue);
        gate.SetResult();

        Assert.Equal(ticket, reply.Headers["ticket"]);
        JsonElement ours = JsonAssert.Parse(reply.Body.Span);
        if (method == "hello")
        {
            // Celery's worker had no neighbour to answer it; a Celeriac neighbour answers as Celery's would.
            JsonElement hello = ours.GetProperty("other@vm");
            Assert.Equal(JsonValueKind.Object, hello.GetProperty("revoked").ValueKind);
            Assert.True(hello.GetProperty("clock").GetInt64() > 0);
            return;
        }

        JsonElement celery = Assert.Single(sample.RootElement.GetProperty("replies").EnumerateArray()).GetProperty("decoded")[0].GetProperty("body").GetProperty(Node);
        JsonElement mine = ours.GetProperty(Node);
        switch (method)
        {
            case "ping" or "revoke":
                JsonAssert.Equal(celery, mine, method);
                break;
            case "registered":
                Assert.Equal(["wireapp.add", "wireapp.sleep"], mine.EnumerateArray().Select(e => e.GetString()!));
                Assert.All(celery.EnumerateArray(), e => Assert.Equal(JsonValueKind.String, e.ValueKind));
                break;
            case "active":
                Assert.Equal(Keys(celery[0]), Keys(mine[0]));
                Assert.Equal(Keys(celery[0].GetProperty("delivery_info")), Keys(mine[0].GetProperty("delivery_info")));
                Assert.Equal(("wireapp.sleep", "[3]"), (mine[0].GetProperty("name").GetString(), mine[0].GetProperty("args").GetRawText()));
                break;
            case "stats":
                Assert.Subset(Keys(mine).ToHashSet(), Keys(celery).ToHashSet());
                Assert.Equal(Keys(celery.GetProperty("broker")), Keys(mine.GetProperty("broker")));
                Assert.Subset(Keys(mine.GetProperty("pool")).ToHashSet(), new HashSet<string> { "max-concurrency", "max-tasks-per-child", "processes", "put-guarded-by-semaphore", "timeouts" });
                Assert.Equal(celery.GetProperty("clock").ValueKind, mine.GetProperty("clock").ValueKind);
                break;
            default:
                Assert.Fail($"no check for the sample's command '{method}'");
                break;
        }
    }

    private static string[] Keys(JsonElement e) => [.. e.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)];

    private static async Task<TransportMessage> NextAsync(ITransport transport, string queue)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(s_wait);
        await foreach (Delivery d in transport.ConsumeAsync(new ConsumeOptions { Queues = [queue], Prefetch = 1 }, timeout.Token))
        {
            await d.AckAsync(Ct);
            return d.Message!;
        }

        throw new TimeoutException("no reply on " + queue);
    }
}
