using System.Collections.Concurrent;
using System.Text.Json;
using Celeriac.Events;
using Celeriac.Protocol;
using Celeriac.Tests.Support;
using Celeriac.Transport;

namespace Celeriac.Tests.Events;

/// <summary>
/// What Celeriac sends against what Celery 5.2.6 sent in the same situation (the golden samples
/// <c>redis-event-*.json</c>, captured from <c>celery worker -E -n wire@%h</c> with <c>task_send_sent_event</c>): the
/// same envelope, exchange and routing key (so the same Redis channel), and per event the same keys with the same
/// Python kinds, and the same values wherever the situation fixes them.
/// </summary>
public sealed class EventWireTests(EventWireTests.Scenario scenario) : IClassFixture<EventWireTests.Scenario>
{
    /// <summary>Values the situation fixes, the same in Celery's capture and in Celeriac's run.</summary>
    private static readonly string[] s_deterministic =
    [
        "type", "utcoffset", "name", "args", "kwargs", "retries", "eta", "expires", "parent_id", "result", "exception",
        "freq", "sw_sys", "queue", "exchange", "routing_key", "terminated", "signum", "expired",
    ];

    public static TheoryData<string> EventSamples => [.. WireSamples.FileNames.Where(f => f.StartsWith("redis-event-", StringComparison.Ordinal))];

    [Fact]
    public void Samples_AllElevenEventCapturesAreHere()
    {
        Assert.Equal(11, EventSamples.Count);
    }

    [Theory]
    [MemberData(nameof(EventSamples))]
    public void Sample_CeleriacSendsTheSameEnvelopeRoutingKeyAndBodyShape(string file)
    {
        using JsonDocument doc = WireSamples.Load(file);
        foreach (JsonElement captured in doc.RootElement.GetProperty("events").EnumerateArray())
        {
            string channel = captured.GetProperty("args")[1].GetString()!;
            JsonElement celeryEnvelope = captured.GetProperty("decoded").GetProperty("envelope");
            JsonElement celeryBody = captured.GetProperty("decoded").GetProperty("body");
            string routingKey = celeryEnvelope.GetProperty("properties").GetProperty("delivery_info").GetProperty("routing_key").GetString()!;
            JsonElement[] celeryEvents = celeryBody.ValueKind == JsonValueKind.Array ? [.. celeryBody.EnumerateArray()] : [celeryBody];

            foreach (JsonElement celeryEvent in celeryEvents)
            {
                string type = celeryEvent.GetProperty("type").GetString()!;
                (string exchange, string key, TransportMessage message, JsonElement body, JsonElement ours) = scenario.Find(routingKey, celeryEvent);

                // The Redis channel kombu PUBLISHes on, from the exchange and routing key (db 0 as in the capture).
                Assert.Equal(channel, "/0." + exchange + "/" + key);
                Assert.Equal(celeryBody.ValueKind, body.ValueKind);
                AssertEnvelope(celeryEnvelope, JsonAssert.Parse(KombuEnvelope.Encode(message, exchange, key)), type);

                Assert.True(
                    JsonAssert.Shape(celeryEvent) == JsonAssert.Shape(ours),
                    $"{type}: Celery's keys and kinds\n  {JsonAssert.Shape(celeryEvent)}\nCeleriac's\n  {JsonAssert.Shape(ours)}");
                foreach (string name in s_deterministic)
                {
                    if (celeryEvent.TryGetProperty(name, out JsonElement expected))
                    {
                        JsonAssert.Equal(expected, ours.GetProperty(name), $"{type}.{name}");
                    }
                }

                // What the situation fixes only relative to itself: who sent it, and a new task is its own root.
                string sender = type == "task-sent" ? scenario.App.Origin : Scenario.Node;
                Assert.Equal(sender, ours.GetProperty("hostname").GetString());
                Assert.Equal(sender, message.Headers["hostname"]);
                Assert.Equal(Environment.ProcessId, ours.GetProperty("pid").GetInt32());
                if (celeryEvent.TryGetProperty("root_id", out JsonElement root) && root.GetString() == celeryEvent.GetProperty("uuid").GetString())
                {
                    Assert.Equal(ours.GetProperty("uuid").GetString(), ours.GetProperty("root_id").GetString());
                }

                if (type.StartsWith("worker-", StringComparison.Ordinal))
                {
                    Assert.Equal("celeriac", ours.GetProperty("sw_ident").GetString());
                    Assert.Equal(3, ours.GetProperty("loadavg").GetArrayLength());
                }
            }
        }
    }

    [Fact]
    public void TaskEvents_GoBatchedOnTaskMulti_WorkerAndSentEventsAlone()
    {
        foreach ((string exchange, string key, TransportMessage message) in scenario.Events)
        {
            Assert.Equal("celeryev", exchange);
            JsonElement body = JsonAssert.Parse(message.Body.Span);
            if (key == "task.multi")
            {
                Assert.Equal(JsonValueKind.Array, body.ValueKind);
                Assert.InRange(body.GetArrayLength(), 1, EventDispatcher.DefaultBufferLimit);
                Assert.All(body.EnumerateArray(), e => Assert.StartsWith("task-", e.GetProperty("type").GetString(), StringComparison.Ordinal));
            }
            else
            {
                Assert.Equal(JsonValueKind.Object, body.ValueKind);
                Assert.Equal(key, body.GetProperty("type").GetString()!.Replace('-', '.'));
            }
        }

        // Received by the worker's own clock: every event it stamped has a value of its own.
        long[] clocks = [.. scenario.Events.SelectMany(e => Bodies(e.Message)).Where(e => e.GetProperty("hostname").GetString() == Scenario.Node).Select(e => e.GetProperty("clock").GetInt64())];
        Assert.Equal(clocks.Length, clocks.Distinct().Count());
    }

    private static IEnumerable<JsonElement> Bodies(TransportMessage message)
    {
        JsonElement body = JsonAssert.Parse(message.Body.Span);
        return body.ValueKind == JsonValueKind.Array ? [.. body.EnumerateArray()] : [body];
    }

    private static void AssertEnvelope(JsonElement celery, JsonElement ours, string type)
    {
        Assert.Equal(JsonAssert.Keys(celery).Order(StringComparer.Ordinal), JsonAssert.Keys(ours).Order(StringComparer.Ordinal));
        Assert.Equal(celery.GetProperty("content-type").GetString(), ours.GetProperty("content-type").GetString());
        Assert.Equal(celery.GetProperty("content-encoding").GetString(), ours.GetProperty("content-encoding").GetString());
        Assert.Equal(JsonAssert.Keys(celery.GetProperty("headers")), JsonAssert.Keys(ours.GetProperty("headers")));
        JsonElement cp = celery.GetProperty("properties"), op = ours.GetProperty("properties");
        Assert.Equal(JsonAssert.Keys(cp).Order(StringComparer.Ordinal), JsonAssert.Keys(op).Order(StringComparer.Ordinal));
        foreach (string name in new[] { "delivery_mode", "priority", "body_encoding", "delivery_info" })
        {
            JsonAssert.Equal(cp.GetProperty(name), op.GetProperty(name), type + " properties." + name);
        }
    }

    /// <summary>
    /// Celery's capture, replayed on Celeriac: worker <c>wire@vm</c> with <c>-E</c> and a client with
    /// <c>task_send_sent_event</c> run <c>wireapp.add(2, 3)</c>, <c>wireapp.fail()</c> (ValueError), a
    /// <c>wireapp.retry_once</c> that retries once on KeyError('transient'), and a task revoked before it arrives; a
    /// heartbeat passes, and the worker stops warm. Every publish is recorded.
    /// </summary>
    public sealed class Scenario : IAsyncLifetime
    {
        public const string Node = "wire@vm";

        private readonly ConcurrentQueue<(string Exchange, string RoutingKey, TransportMessage Message)> _events = new();

        public CeleriacApp App { get; private set; } = null!;

        public IReadOnlyCollection<(string Exchange, string RoutingKey, TransportMessage Message)> Events => _events;

        /// <summary>Celeriac's event of the same type on the same routing key, for the same task name and arguments where Celery's names them.</summary>
        public (string Exchange, string RoutingKey, TransportMessage Message, JsonElement Body, JsonElement Event) Find(string routingKey, JsonElement celery)
        {
            string type = celery.GetProperty("type").GetString()!;
            bool Same(JsonElement ours, string field) =>
                !celery.TryGetProperty(field, out JsonElement theirs) || (ours.TryGetProperty(field, out JsonElement mine) && JsonAssert.Difference(theirs, mine) is null);

            foreach ((string exchange, string key, TransportMessage message) in _events)
            {
                if (key != routingKey)
                {
                    continue;
                }

                JsonElement body = JsonAssert.Parse(message.Body.Span);
                foreach (JsonElement e in Bodies(message))
                {
                    if (e.GetProperty("type").GetString() == type && Same(e, "name") && Same(e, "args"))
                    {
                        return (exchange, key, message, body, e);
                    }
                }
            }

            throw new Xunit.Sdk.XunitException($"Celeriac sent no {type} on {routingKey}; it sent: {string.Join(", ", _events.Select(e => e.RoutingKey))}");
        }

        public async ValueTask InitializeAsync()
        {
            CancellationToken ct = TestContext.Current.CancellationToken;
            RecordingTransport? transport = null;
            App = new CeleriacApp(new CeleriacOptions
            {
                BrokerUrl = "memory://" + Guid.NewGuid().ToString("N"),
                DefaultQueue = "celery",
                NodeName = Node,
                Concurrency = 2,
                TaskEvents = true,
                TaskSendSentEvent = true,
            });
            App.Providers.AddTransport("memory", o => transport = new RecordingTransport(new MemoryTransport(o.Url)));
            App.Task("wireapp.add", (long x, long y) => x + y);
            App.Task("wireapp.fail", string () => throw new TaskFailedException("", TaskStates.Failure, new ExceptionInfo("ValueError", "boom: something went wrong", "builtins"), null));
            App.Task("wireapp.retry_once", async (long x, TaskContext context) => context.Retries == 0
                ? throw await context.RetryAsync(new TaskFailedException(context.Id, TaskStates.Failure, new ExceptionInfo("KeyError", "transient", "builtins"), null), countdown: TimeSpan.FromMilliseconds(200))
                : x);
            RunningWorker worker = await RunningWorker.StartAsync(App);
            try
            {
                await (await App.SendTaskAsync("wireapp.add", [2, 3], ct: ct)).GetAsync<long>(TimeSpan.FromSeconds(15), ct);
                await Assert.ThrowsAsync<TaskFailedException>(async () => await (await App.SendTaskAsync("wireapp.fail", ct: ct)).GetAsync<string>(TimeSpan.FromSeconds(15), ct));
                await (await App.SendTaskAsync("wireapp.retry_once", [2], ct: ct)).GetAsync<long>(TimeSpan.FromSeconds(15), ct);
                string revoked = Guid.NewGuid().ToString();
                await App.RevokeAsync([revoked], ct);
                Assert.True(await Poll.UntilAsync(() => worker.Worker.Revoked.Contains(revoked), TimeSpan.FromSeconds(10)));
                await App.SendTaskAsync("wireapp.add", [2, 3], options: new ApplyOptions { TaskId = revoked }, ct: ct);
                Assert.True(
                    await Poll.UntilAsync(() => Has(transport!, "task-revoked") && Has(transport!, "worker-heartbeat"), TimeSpan.FromSeconds(10)),
                    "no task-revoked or heartbeat within 10 s");
            }
            finally
            {
                await worker.StopAsync();
            }

            foreach ((string exchange, string key, TransportMessage message) in transport!.Published.Where(p => p.Exchange == EventMessages.Exchange))
            {
                _events.Enqueue((exchange, key, message));
            }
        }

        private static bool Has(RecordingTransport transport, string type) =>
            transport.Published.Any(p => p.Exchange == EventMessages.Exchange && System.Text.Encoding.UTF8.GetString(p.Message.Body.Span).Contains($"\"type\":\"{type}\"", StringComparison.Ordinal));

        public async ValueTask DisposeAsync() => await App.DisposeAsync();
    }
}
