using Celeriac.TestServers;
using Celeriac.Worker;

namespace Celeriac.InteropTests.RabbitMq;

/// <summary>The RabbitMQ interop classes share one <see cref="RabbitMqInteropFixture"/> (one rabbitmq-server) and run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class RabbitMqInteropGroup : ICollectionFixture<RabbitMqInteropFixture>
{
    public const string Name = "RabbitMQ interop";
}

/// <summary>
/// One rabbitmq-server, one Celery worker (threads) on <see cref="PythonQueue"/> and one Celeriac worker on
/// <see cref="CeleriacQueue"/>, both with rpc:// results, and a Celeriac client whose default queue is the Python
/// worker's. Tests that need an idle queue or other queue arguments use a queue name of their own.
/// </summary>
public sealed class RabbitMqInteropFixture : IAsyncLifetime
{
    /// <summary>The queue the shared Python worker consumes.</summary>
    public const string PythonQueue = "rmq.py";

    /// <summary>The queue the shared Celeriac worker consumes.</summary>
    public const string CeleriacQueue = "rmq.net";

    /// <summary>The shared Python worker's node name.</summary>
    public const string PythonNode = "py-rmq@localhost";

    /// <summary>The shared Celeriac worker's node name.</summary>
    public const string CeleriacNode = "celeriac-rmq@localhost";

    private CeleriacApp _workerApp = null!;
    private CancellationTokenSource _stop = null!;
    private Task _worker = Task.CompletedTask;

    public RabbitMqServer Server { get; private set; } = null!;

    public PythonWorker Python { get; private set; } = null!;

    /// <summary>What the shared Celeriac worker logged (information and above).</summary>
    public CapturedLog CeleriacLog { get; } = new();

    /// <summary>A Celeriac client with rpc:// results; its default queue is the Python worker's. It connects on first use.</summary>
    public CeleriacApp Client { get; private set; } = null!;

    public IReadOnlyDictionary<string, string> PythonEnvironment => new Dictionary<string, string> { ["CELERY_BROKER_URL"] = Server.Url(), ["CELERY_RESULT_BACKEND"] = "rpc://" };

    public async ValueTask InitializeAsync()
    {
        Server = await RabbitMqServer.StartAsync();
        Python = await PythonWorker.StartAsync(Server.Url(), "rpc://", PythonQueue, concurrency: 4, nodeName: PythonNode);
        Client = NewApp(o => o.DefaultQueue = PythonQueue);
        _workerApp = NewApp(o =>
        {
            o.Queues.Add(CeleriacQueue);
            o.Concurrency = 4;
            o.NodeName = CeleriacNode;
            o.LoggerFactory = CeleriacLog;
        });
        _workerApp.AddTasksFromAssembly(typeof(Quickstart.Tasks).Assembly);
        var worker = new CeleriacWorker(_workerApp);
        _stop = new CancellationTokenSource();
        _worker = Task.Run(() => worker.RunAsync(_stop.Token));
        await Task.WhenAny(worker.Ready, _worker).WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>A new Celeriac app on the fixture's broker with rpc:// results (the caller disposes it).</summary>
    public CeleriacApp NewApp(Action<CeleriacOptions>? configure = null)
    {
        var options = new CeleriacOptions { BrokerUrl = Server.Url() };
        configure?.Invoke(options);
        return new CeleriacApp(options);
    }

    /// <summary>
    /// Runs a Python snippet against the fixture's broker with rpc:// results (interop_tasks and interop_client
    /// importable) and <paramref name="environment"/> added; returns its stdout.
    /// </summary>
    public Task<string> RunPythonAsync(string script, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var all = new Dictionary<string, string>(PythonEnvironment);
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            all[key] = value;
        }

        return PythonCelery.RunAsync(script, all, args);
    }

    /// <summary>The queue's arguments as <c>rabbitmqctl list_queues</c> prints them (<c>[{"x-max-priority",10}]</c>).</summary>
    public async Task<string> QueueArgumentsAsync(string queue)
    {
        string listed = await Server.CtlAsync("list_queues", "-q", "--no-table-headers", "name", "arguments");
        string? row = listed.Split('\n').FirstOrDefault(l => l.StartsWith(queue + "\t", StringComparison.Ordinal));
        Assert.True(row is not null, $"no queue {queue} in\n{listed}");
        return row[(queue.Length + 1)..].Trim();
    }

    /// <summary>Waits (up to 30 s) until <paramref name="queue"/> holds <paramref name="count"/> ready messages; fails early if <paramref name="producer"/> ended first.</summary>
    public async Task WaitForReadyMessagesAsync(string queue, long count, Task? producer = null)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        long seen = 0;
        try
        {
            while ((seen = await Client.Transport.GetQueueLengthAsync(queue, timeout.Token)) < count)
            {
                if (producer is { IsCompleted: true })
                {
                    await producer;
                    Assert.Fail($"the producer ended with {seen} of {count} messages in {queue}");
                }

                await Task.Delay(100, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            Assert.Fail($"{queue} held {seen} of {count} messages after 30 s");
        }

        Assert.Equal(count, seen);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _worker.WaitAsync(TimeSpan.FromSeconds(30));
        _stop.Dispose();
        await _workerApp.DisposeAsync();
        await Client.DisposeAsync();
        await Python.DisposeAsync();
        await Server.DisposeAsync();
    }
}
