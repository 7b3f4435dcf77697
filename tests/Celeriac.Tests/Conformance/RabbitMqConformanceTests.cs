using Celeriac.RabbitMQ;
using Celeriac.TestServers;
using Celeriac.Transport;

namespace Celeriac.Tests.Conformance;

/// <summary>One real rabbitmq-server for the test run (it takes seconds to start); each test class has its own vhost.</summary>
public sealed class RabbitMqServerFixture : IAsyncLifetime
{
    public RabbitMqServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await RabbitMqServer.StartAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

public sealed class RabbitMqTransportConformanceTests(RabbitMqServerFixture rabbit) : TransportConformanceTests, IClassFixture<RabbitMqServerFixture>
{
    protected override string? NoPrioritiesReason => "AMQP serves a higher priority first (x-max-priority queues), the opposite of kombu's Redis lists that this test pins";

    protected override bool RedeliversAtOnceWhenConsumerDies => true;

    protected override ValueTask<ITransport> CreateTransportAsync(TransportSetup setup) =>
        ValueTask.FromResult<ITransport>(new RabbitMqTransport(new TransportOptions { Url = new Uri(rabbit.Server.Url()) }));

    protected override ValueTask KillAsync(ITransport transport) => ((RabbitMqTransport)transport).KillAsync();
}

/// <summary>What Celery users rely on from RabbitMQ: nothing lost on a quick exit, Celery's topology, a worker that runs tasks.</summary>
public sealed partial class RabbitMqBrokerTests(RabbitMqServerFixture rabbit) : IClassFixture<RabbitMqServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Publish20000_ThenTheClientDiesAtOnce_AllAreInTheQueue()
    {
        const int Count = 20_000;
        string queue = "burst-" + Guid.NewGuid().ToString("N")[..8];
        var client = new RabbitMqTransport(new TransportOptions { Url = new Uri(rabbit.Server.Url()) });
        await Task.WhenAll(Enumerable.Range(0, Count / 500).Select(batch => client.PublishAsync("", queue,
            [.. Enumerable.Range(batch * 500, 500).Select(i => new TransportMessage { Body = System.Text.Encoding.UTF8.GetBytes($"[[{i}], {{}}, {{}}]") })], Ct).AsTask()));

        // As a process killed right after its last publish: the socket is dropped, nothing is flushed or closed.
        await client.KillAsync();

        string listed = await rabbit.Server.CtlAsync("list_queues", "-q", "--no-table-headers", "name", "messages");
        Assert.Contains($"{queue}\t{Count}", listed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_DeclaresCelerysTopologyAndRunsTasks()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = rabbit.Server.Url(), ResultBackend = "memory://" + Guid.NewGuid().ToString("N"), Concurrency = 2 });
        app.Task("tasks.add", (long x, long y) => x + y);
        await using (Support.RunningWorker worker = await Support.RunningWorker.StartAsync(app))
        {
            AsyncResult result = await app.Signature("tasks.add").DelayAsync(2, 3);
            Assert.Equal(5, await result.GetAsync<long>(TimeSpan.FromSeconds(30), Ct));

            // As Celery 5.2 declares them on RabbitMQ 3.10 (golden amqp-topology.json, with_worker).
            string exchanges = await rabbit.Server.CtlAsync("list_exchanges", "-q", "--no-table-headers", "name", "type", "durable", "auto_delete", "internal", "arguments");
            Assert.Contains("celery\tdirect\ttrue\tfalse\tfalse\t[]", exchanges, StringComparison.Ordinal);
            Assert.Contains("celery.pidbox\tfanout\tfalse\tfalse\tfalse\t[]", exchanges, StringComparison.Ordinal);
            string queues = await rabbit.Server.CtlAsync("list_queues", "-q", "--no-table-headers", "name", "durable", "auto_delete", "exclusive", "arguments");
            Assert.Contains("celery\ttrue\tfalse\tfalse\t[]", queues, StringComparison.Ordinal);
            string bindings = await rabbit.Server.CtlAsync("list_bindings", "-q", "--no-table-headers", "source_name", "destination_name", "routing_key");
            Assert.Contains("celery\tcelery\tcelery", bindings, StringComparison.Ordinal);
        }
    }
}

/// <summary>The rpc:// result backend: states travel to the client's own reply queue.</summary>
public sealed class RpcResultBackendTests(RabbitMqServerFixture rabbit) : IClassFixture<RabbitMqServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ClientAndWorkerApps_DefaultBackendOnAmqp_IsRpcAndCarriesResultsAndErrors()
    {
        await using var workerApp = new CeleriacApp(new CeleriacOptions { BrokerUrl = rabbit.Server.Url(), Concurrency = 2, TrackStarted = true });
        workerApp.Task("tasks.add", (long x, long y) => x + y);
        workerApp.Task("tasks.fail", long (string m) => throw new InvalidOperationException(m));
        await using var client = new CeleriacApp(new CeleriacOptions { BrokerUrl = rabbit.Server.Url() });
        Assert.Equal("rpc://", client.EffectiveResultBackendUrl);
        await using Support.RunningWorker worker = await Support.RunningWorker.StartAsync(workerApp);

        AsyncResult sum = await client.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
        AsyncResult failed = await client.SendTaskAsync("tasks.fail", ["boom"], ct: Ct);

        Assert.Equal(5, await sum.GetAsync<long>(TimeSpan.FromSeconds(30), Ct));
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => failed.GetAsync<long>(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal(("InvalidOperationException", "boom"), (error.ExceptionType, error.RemoteMessage));

        // The reply queue is Celery's: named by the client's oid, not durable, auto-delete, x-expires one day.
        string queues = await rabbit.Server.CtlAsync("list_queues", "-q", "--no-table-headers", "name", "durable", "auto_delete", "arguments");
        Assert.Contains($"{client.ReplyTo}\tfalse\ttrue\t[{{\"x-expires\",86400000}}]", queues, StringComparison.Ordinal);
    }
}
