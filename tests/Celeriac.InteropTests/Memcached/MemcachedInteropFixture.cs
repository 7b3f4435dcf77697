using Celeriac.TestServers;
using Celeriac.Worker;

namespace Celeriac.InteropTests.Memcached;

/// <summary>
/// Celery's cache backend shared across languages: a real memcached holds the results, a real redis-server is the
/// broker, a real Celery 5.2 worker (pylibmc) runs <c>interop_tasks.py</c> on <see cref="PythonQueue"/> and an
/// in-process Celeriac worker runs the Quickstart's tasks on <see cref="CeleriacQueue"/>; both are given the same
/// <c>cache+memcached://</c> URL.
/// </summary>
public sealed class MemcachedInteropFixture : IAsyncLifetime
{
    /// <summary>The Python worker's queue.</summary>
    public const string PythonQueue = "mc.py";

    /// <summary>The Celeriac worker's queue.</summary>
    public const string CeleriacQueue = "mc.net";

    private RedisServer? _redis;
    private MemcachedServer? _memcached;
    private PythonWorker? _pythonWorker;
    private CeleriacApp? _client;
    private CeleriacApp? _workerApp;
    private CancellationTokenSource? _stopWorker;
    private Task? _workerRun;

    /// <summary>The memcached holding the results.</summary>
    public MemcachedServer Memcached => _memcached ?? throw new InvalidOperationException("not started");

    /// <summary>The broker URL.</summary>
    public string BrokerUrl => (_redis ?? throw new InvalidOperationException("not started")).Url(0);

    /// <summary>The result backend URL, the same for both languages.</summary>
    public string BackendUrl => Memcached.Url();

    /// <summary>The Celery worker (its log shows what Celery did).</summary>
    public PythonWorker PythonWorker => _pythonWorker ?? throw new InvalidOperationException("not started");

    /// <summary>A Celeriac client; its default queue is the Python worker's.</summary>
    public CeleriacApp Client => _client ?? throw new InvalidOperationException("not started");

    /// <summary>What the Celeriac worker logged.</summary>
    public CapturedLog CeleriacWorkerLog { get; } = new();

    /// <summary>Runs a Python snippet on the fixture's broker and backend; returns its stdout.</summary>
    public Task<string> RunPythonAsync(string script, params string[] args) =>
        PythonCelery.RunAsync(script, new Dictionary<string, string> { ["CELERY_BROKER_URL"] = BrokerUrl, ["CELERY_RESULT_BACKEND"] = BackendUrl }, args);

    /// <inheritdoc />
    public async ValueTask InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _memcached = await MemcachedServer.StartAsync();
        _client = new CeleriacApp(new CeleriacOptions { BrokerUrl = BrokerUrl, ResultBackend = BackendUrl, DefaultQueue = PythonQueue });
        _pythonWorker = await PythonWorker.StartAsync(BrokerUrl, BackendUrl, PythonQueue, concurrency: 4, nodeName: "py-mc@localhost");

        var options = new CeleriacOptions
        {
            BrokerUrl = BrokerUrl,
            ResultBackend = BackendUrl,
            Concurrency = 4,
            NodeName = "celeriac-mc@localhost",
            LoggerFactory = CeleriacWorkerLog,
        };
        options.Queues.Add(CeleriacQueue);
        _workerApp = new CeleriacApp(options);
        _workerApp.AddTasksFromAssembly(typeof(Quickstart.Tasks).Assembly);
        _stopWorker = new CancellationTokenSource();
        var worker = new CeleriacWorker(_workerApp);
        _workerRun = Task.Run(() => worker.RunAsync(_stopWorker.Token));
        await Task.WhenAny(worker.Ready, _workerRun).WaitAsync(TimeSpan.FromSeconds(30));
        if (_workerRun.IsCompleted)
        {
            await _workerRun;
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
                // Torn down regardless: the servers go next.
            }
        }

        foreach (CeleriacApp? app in (CeleriacApp?[])[_workerApp, _client])
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }
        }

        if (_pythonWorker is not null)
        {
            await _pythonWorker.DisposeAsync();
        }

        if (_memcached is not null)
        {
            await _memcached.DisposeAsync();
        }

        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }

        _stopWorker?.Dispose();
    }
}
