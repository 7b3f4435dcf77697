using Celeriac.TestServers;
using Celeriac.Worker;

[assembly: AssemblyFixture(typeof(Celeriac.InteropTests.Redis.RedisInteropFixture))]

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// One real redis-server for the assembly (broker in db 0, results in db 1), a real Celery 5.2 worker with the
/// Quickstart's tasks in Python on queue <see cref="PythonQueue"/>, an in-process Celeriac worker with the
/// Quickstart's tasks on queue <see cref="CeleriacQueue"/> (started on first use), and a Celeriac client.
/// Tests stay independent through their own task ids; tests that need an idle queue use their own queue name.
/// </summary>
public sealed class RedisInteropFixture : IAsyncLifetime
{
    /// <summary>The queue the shared Python worker consumes.</summary>
    public const string PythonQueue = "interop.py";

    /// <summary>The queue the shared Celeriac worker consumes.</summary>
    public const string CeleriacQueue = "interop.net";

    /// <summary>The shared Python worker's node name.</summary>
    public const string PythonNode = "py-interop@localhost";

    /// <summary>The shared Celeriac worker's node name.</summary>
    public const string CeleriacNode = "celeriac-interop@localhost";

    private readonly SemaphoreSlim _workerGate = new(1, 1);
    private RedisServer? _server;
    private PythonWorker? _pythonWorker;
    private CeleriacApp? _client;
    private CeleriacApp? _workerApp;
    private CancellationTokenSource? _stopWorker;
    private Task? _workerRun;

    /// <summary>The server.</summary>
    public RedisServer Server => _server ?? throw new InvalidOperationException("not started");

    /// <summary>The broker URL (db 0).</summary>
    public string BrokerUrl => Server.Url(0);

    /// <summary>The result backend URL (db 1).</summary>
    public string BackendUrl => Server.Url(1);

    /// <summary>The shared Celery worker (its log shows what Celery did).</summary>
    public PythonWorker PythonWorker => _pythonWorker ?? throw new InvalidOperationException("not started");

    /// <summary>
    /// A Celeriac client on the fixture's broker and backend; its default queue is the Python worker's. Its
    /// connections open on first use.
    /// </summary>
    public CeleriacApp Client => _client ?? throw new InvalidOperationException("not started");

    /// <summary>What the shared Celeriac worker logged (information and above).</summary>
    public CapturedLog CeleriacWorkerLog { get; } = new();

    /// <summary>The environment of Python processes: the fixture's broker and backend.</summary>
    public IReadOnlyDictionary<string, string> PythonEnvironment => new Dictionary<string, string>
    {
        ["CELERY_BROKER_URL"] = BrokerUrl,
        ["CELERY_RESULT_BACKEND"] = BackendUrl,
    };

    /// <inheritdoc />
    public async ValueTask InitializeAsync()
    {
        _server = await RedisServer.StartAsync();
        _client = NewApp(o => o.DefaultQueue = PythonQueue);
        _pythonWorker = await PythonWorker.StartAsync(BrokerUrl, BackendUrl, PythonQueue, concurrency: 4, nodeName: PythonNode, trackStarted: true);
    }

    /// <summary>A new Celeriac app on the fixture's broker and backend (the caller disposes it).</summary>
    public CeleriacApp NewApp(Action<CeleriacOptions>? configure = null)
    {
        var options = new CeleriacOptions { BrokerUrl = BrokerUrl, ResultBackend = BackendUrl };
        configure?.Invoke(options);
        return new CeleriacApp(options);
    }

    /// <summary>A new app with the Quickstart's tasks (<c>samples/Quickstart/Tasks.cs</c>) registered.</summary>
    public CeleriacApp NewQuickstartApp(Action<CeleriacOptions>? configure = null)
    {
        CeleriacApp app = NewApp(configure);
        app.AddTasksFromAssembly(typeof(Quickstart.Tasks).Assembly);
        return app;
    }

    /// <summary>Runs a Python snippet against the fixture's Redis (interop_tasks and interop_client importable); returns its stdout.</summary>
    public Task<string> RunPythonAsync(string script, params string[] args) => PythonCelery.RunAsync(script, PythonEnvironment, args);

    /// <summary>Starts the shared Celeriac worker on <see cref="CeleriacQueue"/> (once) and waits until it consumes.</summary>
    public async Task EnsureCeleriacWorkerAsync()
    {
        await _workerGate.WaitAsync(TimeSpan.FromSeconds(30));
        try
        {
            if (_workerRun is { IsCompleted: false })
            {
                return;
            }

            if (_workerApp is not null)
            {
                await _workerApp.DisposeAsync();
            }

            _workerApp = NewQuickstartApp(o =>
            {
                o.Queues.Add(CeleriacQueue);
                o.Concurrency = 4;
                o.TrackStarted = true;
                o.NodeName = CeleriacNode;
                o.LoggerFactory = CeleriacWorkerLog;
            });
            _stopWorker = new CancellationTokenSource();
            var worker = new CeleriacWorker(_workerApp);
            _workerRun = Task.Run(() => worker.RunAsync(_stopWorker.Token));
            await Task.WhenAny(worker.Ready, _workerRun).WaitAsync(TimeSpan.FromSeconds(30));
            if (_workerRun.IsCompleted)
            {
                await _workerRun;
            }
        }
        finally
        {
            _workerGate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stopWorker is not null && _workerRun is not null)
        {
            await _stopWorker.CancelAsync();
            try
            {
                await _workerRun.WaitAsync(TimeSpan.FromSeconds(15));
            }
            catch (Exception)
            {
                // Torn down regardless: the server goes next.
            }
        }

        if (_workerApp is not null)
        {
            await _workerApp.DisposeAsync();
        }

        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        if (_pythonWorker is not null)
        {
            await _pythonWorker.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _stopWorker?.Dispose();
        _workerGate.Dispose();
    }
}
