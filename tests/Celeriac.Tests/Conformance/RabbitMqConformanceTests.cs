using System.Text.Json;
using Celeriac.RabbitMQ;
using Celeriac.TestServers;
using Celeriac.Transport;

namespace Celeriac.Tests.Conformance;

public sealed class RabbitMqTransportConformanceTests(RabbitMqServerFixture rabbit) : TransportConformanceTests
{
    protected override bool HigherPriorityFirst => true;

    protected override bool BrokerCountsPrefetch => true;

    protected override bool RedeliversAtOnceWhenConsumerDies => true;

    protected override bool RequeuedComesFirst => false;

    protected override async ValueTask<ITransport> CreateTransportAsync(TransportSetup setup) =>
        new RabbitMqTransport(new TransportOptions { Url = new Uri((await rabbit.ServerAsync()).Url()) });

    protected override ValueTask KillAsync(ITransport transport) => ((RabbitMqTransport)transport).KillAsync();
}

/// <summary>What Celery users rely on from RabbitMQ: nothing lost on a quick exit, Celery's topology, a worker that runs tasks.</summary>
public sealed partial class RabbitMqBrokerTests(RabbitMqServerFixture rabbit)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Publish20000_ThenTheClientDiesAtOnce_AllAreInTheQueue()
    {
        const int Count = 20_000;
        string queue = "burst-" + Guid.NewGuid().ToString("N")[..8];
        RabbitMqServer server = await rabbit.ServerAsync();
        var client = new RabbitMqTransport(new TransportOptions { Url = new Uri(server.Url()) });
        await Task.WhenAll(Enumerable.Range(0, Count / 500).Select(batch => client.PublishAsync("", queue,
            [.. Enumerable.Range(batch * 500, 500).Select(i => new TransportMessage { Body = System.Text.Encoding.UTF8.GetBytes($"[[{i}], {{}}, {{}}]") })], Ct).AsTask()));

        // As a process killed right after its last publish: the socket is dropped, nothing is flushed or closed.
        await client.KillAsync();

        string listed = await server.CtlAsync("list_queues", "-q", "--no-table-headers", "name", "messages");
        Assert.Contains($"{queue}\t{Count}", listed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_DeclaresCelerysTopologyAndRunsTasks()
    {
        // A vhost of its own, so that only what this client and worker declare is listed.
        string vhost = await rabbit.NewVhostAsync();
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = (await rabbit.ServerAsync()).Url(vhost), NodeName = "wire@vm", Concurrency = 2 });
        app.Task("tasks.add", (long x, long y) => x + y);
        await using Support.RunningWorker worker = await Support.RunningWorker.StartAsync(app);
        AsyncResult result = await app.Signature("tasks.add").DelayAsync(2, 3);
        Assert.Equal(5, await result.GetAsync<long>(TimeSpan.FromSeconds(30), Ct));

        // What Celery 5.2 declares on RabbitMQ 3.10 with a worker running (golden amqp-topology.json, with_worker):
        // uuids (the gossip queue, the client's reply queue) are compared as <uuid>.
        using JsonDocument golden = Support.WireSamples.Load("amqp-topology.json");
        JsonElement celery = golden.RootElement.GetProperty("with_worker");
        static string Uuids(string name) => UuidPattern().Replace(name, "<uuid>");
        static string Arguments(JsonElement args) =>
            string.Join(",", args.EnumerateArray().Select(a => $"{a[0].GetString()}:{a[1].GetString()}={a[2]}").Order(StringComparer.Ordinal));

        string[] goldenExchanges = [.. celery.GetProperty("exchanges").EnumerateArray()
            .Select(e => $"{e.GetProperty("name").GetString()} {e.GetProperty("type").GetString()} durable={e.GetProperty("durable")} auto_delete={e.GetProperty("auto_delete")} internal={e.GetProperty("internal")} [{Arguments(e.GetProperty("arguments"))}]")
            .Order(StringComparer.Ordinal)];
        string[] goldenQueues = [.. celery.GetProperty("queues").EnumerateArray()
            .Select(q => $"{Uuids(q.GetProperty("name").GetString()!)} durable={q.GetProperty("durable")} auto_delete={q.GetProperty("auto_delete")} exclusive={q.GetProperty("exclusive")} [{Arguments(q.GetProperty("arguments"))}]")
            .Order(StringComparer.Ordinal)];
        string[] goldenBindings = [.. celery.GetProperty("bindings").EnumerateArray()
            .Select(b => $"{b.GetProperty("source_name").GetString()} -> {Uuids(b.GetProperty("destination_name").GetString()!)} key={Uuids(b.GetProperty("routing_key").GetString()!)}")
            .Order(StringComparer.Ordinal)];

        string[] exchanges = [.. (await CtlJsonAsync(vhost, "list_exchanges", "name", "type", "durable", "auto_delete", "internal", "arguments"))
            .Select(e => $"{e.GetProperty("name").GetString()} {e.GetProperty("type").GetString()} durable={e.GetProperty("durable")} auto_delete={e.GetProperty("auto_delete")} internal={e.GetProperty("internal")} [{CtlArguments(e.GetProperty("arguments"))}]")
            .Order(StringComparer.Ordinal)];
        string[] queues = [.. (await CtlJsonAsync(vhost, "list_queues", "name", "durable", "auto_delete", "exclusive", "arguments"))
            .Select(q => $"{Uuids(q.GetProperty("name").GetString()!)} durable={q.GetProperty("durable")} auto_delete={q.GetProperty("auto_delete")} exclusive={q.GetProperty("exclusive")} [{CtlArguments(q.GetProperty("arguments"))}]")
            .Order(StringComparer.Ordinal)];
        string[] bindings = [.. (await CtlJsonAsync(vhost, "list_bindings", "source_name", "destination_name", "routing_key"))
            .Select(b => $"{b.GetProperty("source_name").GetString()} -> {Uuids(b.GetProperty("destination_name").GetString()!)} key={Uuids(b.GetProperty("routing_key").GetString()!)}")
            .Order(StringComparer.Ordinal)];

        Assert.Equal(goldenExchanges, exchanges);
        Assert.Equal(goldenQueues, queues);
        Assert.Equal(goldenBindings, bindings);
    }

    /// <summary>
    /// A flood of deferred deliveries (ETA tasks) would come in at one window per round trip: while it lasts the
    /// channel's prefetch lets the broker send ahead; once a delivery that was not deferred is settled, the prefetch is
    /// back to the window plus one per deferred delivery held, as Celery's.
    /// </summary>
    [Fact]
    public async Task DeferredFlood_BrokerSendsAhead_UntilADeliveryNotDeferredIsSettled()
    {
        const int Window = 4;
        const int Flood = 40;
        string vhost = await rabbit.NewVhostAsync();
        await using var transport = new RabbitMqTransport(new TransportOptions { Url = new Uri((await rabbit.ServerAsync()).Url(vhost)) });
        string queue = "flood-" + Guid.NewGuid().ToString("N")[..8];
        static TransportMessage Message(string id) => new()
        {
            Body = System.Text.Encoding.UTF8.GetBytes("[[], {}, {}]"),
            Headers = new Dictionary<string, object?>(StringComparer.Ordinal) { ["id"] = id },
        };
        await transport.PublishAsync("", queue, [.. Enumerable.Range(0, Flood).Select(i => Message("eta" + i)), Message("now")], Ct);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(30));
        await using IAsyncEnumerator<Delivery> consumer = transport.ConsumeAsync(new ConsumeOptions { Queues = [queue], Prefetch = Window }, stop.Token).GetAsyncEnumerator(stop.Token);
        for (int i = 0; i < Flood; i++)
        {
            Assert.True(await consumer.MoveNextAsync());
            Assert.Equal("eta" + i, consumer.Current.Message!.Headers["id"]);
            consumer.Current.Defer();
        }

        Assert.True(await consumer.MoveNextAsync());
        Delivery now = consumer.Current;
        Assert.Equal("now", now.Message!.Headers["id"]);

        // Sending ahead as many as the run so far, up to 8 windows.
        Assert.Equal(Window + Flood + Math.Min(Flood, 8 * Window), await GlobalPrefetchAsync(vhost, Window + Flood + Math.Min(Flood, 8 * Window)));
        await now.AckAsync(Ct);
        Assert.Equal(Window + Flood, await GlobalPrefetchAsync(vhost, Window + Flood));
    }

    /// <summary>The largest global prefetch of the vhost's channels, read until it is <paramref name="expected"/> (10 s at most).</summary>
    private async Task<long> GlobalPrefetchAsync(string vhost, long expected)
    {
        long seen = -1;
        await Support.Poll.UntilAsync(
            async () => (seen = (await CtlJsonAsync(vhost, "list_channels", "vhost", "global_prefetch_count"))
                .Where(c => c.GetProperty("vhost").GetString() == vhost)
                .Select(c => c.GetProperty("global_prefetch_count").GetInt64())
                .DefaultIfEmpty(0).Max()) == expected,
            TimeSpan.FromSeconds(10));
        return seen;
    }

    /// <summary>rabbitmqctl's rows as JSON objects.</summary>
    private async Task<JsonElement[]> CtlJsonAsync(string vhost, string command, params string[] columns)
    {
        string json = await (await rabbit.ServerAsync()).CtlAsync([command, "-p", vhost, "-q", "--formatter", "json", .. columns]);
        using JsonDocument doc = JsonDocument.Parse(json);
        return [.. doc.RootElement.EnumerateArray().Select(e => e.Clone())];
    }

    /// <summary>rabbitmqctl's JSON arguments ([name, AMQP type, value] triples, as in the golden sample), with their types.</summary>
    private static string CtlArguments(JsonElement args) => args.ValueKind switch
    {
        JsonValueKind.Array => string.Join(",", args.EnumerateArray().Select(a => $"{a[0].GetString()}:{a[1].GetString()}={a[2]}").Order(StringComparer.Ordinal)),
        _ => args.ToString(),
    };

    [System.Text.RegularExpressions.GeneratedRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")]
    private static partial System.Text.RegularExpressions.Regex UuidPattern();
}

/// <summary>The rpc:// result backend: states travel to the client's own reply queue.</summary>
public sealed class RpcResultBackendTests(RabbitMqServerFixture rabbit)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ClientAndWorkerApps_DefaultBackendOnAmqp_IsRpcAndCarriesResultsAndErrors()
    {
        RabbitMqServer server = await rabbit.ServerAsync();
        await using var workerApp = new CeleriacApp(new CeleriacOptions { BrokerUrl = server.Url(), Concurrency = 2, TrackStarted = true });
        workerApp.Task("tasks.add", (long x, long y) => x + y);
        workerApp.Task("tasks.fail", long (string m) => throw new InvalidOperationException(m));
        await using var client = new CeleriacApp(new CeleriacOptions { BrokerUrl = server.Url() });
        Assert.Equal("rpc://", client.EffectiveResultBackendUrl);
        await using Support.RunningWorker worker = await Support.RunningWorker.StartAsync(workerApp);

        AsyncResult sum = await client.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
        AsyncResult failed = await client.SendTaskAsync("tasks.fail", ["boom"], ct: Ct);

        Assert.Equal(5, await sum.GetAsync<long>(TimeSpan.FromSeconds(30), Ct));
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => failed.GetAsync<long>(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal(("InvalidOperationException", "boom"), (error.ExceptionType, error.RemoteMessage));

        // The reply queue is Celery's: named by the client's oid, not durable, auto-delete, x-expires one day.
        string queues = await server.CtlAsync("list_queues", "-q", "--no-table-headers", "name", "durable", "auto_delete", "arguments");
        Assert.Contains($"{client.ReplyTo}\tfalse\ttrue\t[{{\"x-expires\",86400000}}]", queues, StringComparison.Ordinal);
    }
}
