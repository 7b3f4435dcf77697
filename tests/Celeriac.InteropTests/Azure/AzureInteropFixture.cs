using Celeriac.TestServers;
using Celeriac.Worker;

namespace Celeriac.InteropTests.Azure;

/// <summary>
/// Celery's Azure Block Blob result backend shared by both sides: a redis-server as the broker, azurite's blob service
/// as the result backend (the same <c>azureblockblob://</c> URL, Celery's default container and names on both sides),
/// a real Celery 5.2 worker (Debian's python3-azure-storage) on <see cref="PythonQueue"/>, an in-process Celeriac
/// worker with the Quickstart's tasks on <see cref="CeleriacQueue"/>, and a Celeriac client.
/// </summary>
public sealed class AzureInteropFixture : IAsyncLifetime
{
    /// <summary>The queue the Python worker consumes.</summary>
    public const string PythonQueue = "az.py";

    /// <summary>The queue the Celeriac worker consumes.</summary>
    public const string CeleriacQueue = "az.net";

    private RedisServer? _redis;
    private AzuriteServer? _azurite;
    private PythonWorker? _pythonWorker;
    private CeleriacApp? _client;
    private CeleriacApp? _workerApp;
    private CancellationTokenSource? _stopWorker;
    private Task? _workerRun;

    /// <summary>The blob service.</summary>
    public AzuriteServer Azurite => _azurite ?? throw new InvalidOperationException("not started");

    /// <summary>The broker URL.</summary>
    public string BrokerUrl => (_redis ?? throw new InvalidOperationException("not started")).Url(0);

    /// <summary>The result backend URL, the same for both sides.</summary>
    public string BackendUrl => Azurite.Url();

    /// <summary>A Celeriac client; its default queue is the Python worker's.</summary>
    public CeleriacApp Client => _client ?? throw new InvalidOperationException("not started");

    /// <summary>The Python worker (its log shows what Celery did).</summary>
    public PythonWorker PythonWorker => _pythonWorker ?? throw new InvalidOperationException("not started");

    /// <inheritdoc />
    public async ValueTask InitializeAsync()
    {
        Task<RedisServer> redis = RedisServer.StartAsync();
        Task<AzuriteServer> azurite = AzuriteServer.StartAsync();
        _redis = await redis;
        _azurite = await azurite;
        _client = new CeleriacApp(new CeleriacOptions { BrokerUrl = BrokerUrl, ResultBackend = BackendUrl, DefaultQueue = PythonQueue });
        _pythonWorker = await PythonWorker.StartAsync(BrokerUrl, BackendUrl, PythonQueue, concurrency: 4, nodeName: "py-azure@localhost");

        var workerOptions = new CeleriacOptions { BrokerUrl = BrokerUrl, ResultBackend = BackendUrl, Concurrency = 4, NodeName = "celeriac-azure@localhost" };
        workerOptions.Queues.Add(CeleriacQueue);
        _workerApp = new CeleriacApp(workerOptions);
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

    /// <summary>Runs a Python snippet with the fixture's broker and backend (interop_tasks and interop_client importable); returns its stdout.</summary>
    public Task<string> RunPythonAsync(string script, params string[] args) =>
        PythonCelery.RunAsync(script, new Dictionary<string, string> { ["CELERY_BROKER_URL"] = BrokerUrl, ["CELERY_RESULT_BACKEND"] = BackendUrl }, args);

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

        if (_azurite is not null)
        {
            await _azurite.DisposeAsync();
        }

        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }

        _stopWorker?.Dispose();
    }
}
