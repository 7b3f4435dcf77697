using System.Text.Json;
using Celeriac.TestServers;
using Celeriac.Worker;

namespace Celeriac.InteropTests.Aws;

/// <summary>
/// A Redis broker, an AWS emulator as the result backend, a real Celery 5.2 worker (Debian's python3-celery and
/// python3-boto3) on <see cref="PythonQueue"/>, an in-process Celeriac worker on <see cref="CeleriacQueue"/> (both
/// with the Quickstart's tasks) and a Celeriac client, all given the same backend URL and settings.
/// </summary>
public abstract class AwsInteropFixture : IAsyncLifetime
{
    /// <summary>The queue the Python worker consumes.</summary>
    public const string PythonQueue = "aws.py";

    /// <summary>The queue the Celeriac worker consumes.</summary>
    public const string CeleriacQueue = "aws.net";

    private RedisServer? _redis;
    private PythonWorker? _python;
    private CeleriacApp? _client;
    private CeleriacApp? _workerApp;
    private readonly CancellationTokenSource _stop = new();
    private Task? _workerRun;

    /// <summary>The broker URL.</summary>
    public string BrokerUrl => (_redis ?? throw new InvalidOperationException("not started")).Url(0);

    /// <summary>The result backend URL both sides use.</summary>
    public abstract string BackendUrl { get; }

    /// <summary>The backend's settings under Celery's names (Celeriac's ResultBackendSettings, Python's app.conf).</summary>
    protected virtual IReadOnlyDictionary<string, string> BackendSettings => new Dictionary<string, string>();

    /// <summary>The Python worker (its log shows what Celery did).</summary>
    public PythonWorker PythonWorker => _python ?? throw new InvalidOperationException("not started");

    /// <summary>A Celeriac client; its default queue is the Python worker's.</summary>
    public CeleriacApp Client => _client ?? throw new InvalidOperationException("not started");

    /// <summary>The environment of Python processes: broker, backend, its settings and fixed dummy AWS credentials.</summary>
    public IReadOnlyDictionary<string, string> PythonEnvironment => new Dictionary<string, string>
    {
        ["CELERY_BROKER_URL"] = BrokerUrl,
        ["CELERY_RESULT_BACKEND"] = BackendUrl,
        ["CELERY_BACKEND_SETTINGS"] = JsonSerializer.Serialize(BackendSettings),
        ["AWS_ACCESS_KEY_ID"] = "celeriac",
        ["AWS_SECRET_ACCESS_KEY"] = "celeriac",
        ["AWS_DEFAULT_REGION"] = "us-east-1",
        ["AWS_EC2_METADATA_DISABLED"] = "true",
        ["AWS_CONFIG_FILE"] = "/dev/null",
        ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null",
    };

    /// <summary>Starts the emulator (and makes what the backend needs in it).</summary>
    protected abstract Task StartStoreAsync();

    /// <summary>Stops the emulator.</summary>
    protected abstract ValueTask StopStoreAsync();

    /// <inheritdoc />
    public async ValueTask InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        await StartStoreAsync();
        _client = NewApp(o => o.DefaultQueue = PythonQueue);
        Task<PythonWorker> python = PythonWorker.StartAsync(BrokerUrl, BackendUrl, PythonQueue, concurrency: 4, nodeName: "py-aws@localhost", environment: PythonEnvironment);
        _workerApp = NewApp(o =>
        {
            o.Queues.Add(CeleriacQueue);
            o.Concurrency = 4;
            o.NodeName = "celeriac-aws@localhost";
        });
        _workerApp.AddTasksFromAssembly(typeof(Quickstart.Tasks).Assembly);
        var worker = new CeleriacWorker(_workerApp);
        _workerRun = Task.Run(() => worker.RunAsync(_stop.Token));
        await Task.WhenAny(worker.Ready, _workerRun).WaitAsync(TimeSpan.FromSeconds(30));
        if (_workerRun.IsCompleted)
        {
            await _workerRun;
        }

        _python = await python;
    }

    /// <summary>A new Celeriac app on the fixture's broker and backend (the caller disposes it).</summary>
    public CeleriacApp NewApp(Action<CeleriacOptions>? configure = null)
    {
        var options = new CeleriacOptions { BrokerUrl = BrokerUrl, ResultBackend = BackendUrl };
        foreach ((string key, string value) in BackendSettings)
        {
            options.ResultBackendSettings[key] = value;
        }

        configure?.Invoke(options);
        return new CeleriacApp(options);
    }

    /// <summary>Runs a Python snippet with the fixture's environment; returns its stdout.</summary>
    public Task<string> RunPythonAsync(string script, params string[] args) => PythonCelery.RunAsync(script, PythonEnvironment, args);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_workerRun is not null)
        {
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

        if (_python is not null)
        {
            await _python.DisposeAsync();
        }

        await StopStoreAsync();
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }

        _stop.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The fixture on s3rver: a bucket, objects under a base path.</summary>
public sealed class S3InteropFixture : AwsInteropFixture
{
    private S3Server? _s3;
    private string _bucket = "";

    /// <summary>The emulator.</summary>
    public S3Server Server => _s3 ?? throw new InvalidOperationException("not started");

    /// <summary>The bucket.</summary>
    public string Bucket => _bucket;

    /// <summary>The base path (Celery's <c>s3_base_path</c>).</summary>
    public const string BasePath = "interop/";

    /// <inheritdoc />
    public override string BackendUrl => "s3://";

    /// <inheritdoc />
    protected override IReadOnlyDictionary<string, string> BackendSettings => new Dictionary<string, string>
    {
        ["s3_bucket"] = _bucket,
        ["s3_base_path"] = BasePath,
        ["s3_endpoint_url"] = Server.Endpoint,
        ["s3_region"] = "us-east-1",
        ["s3_access_key_id"] = "S3RVER",
        ["s3_secret_access_key"] = "S3RVER",
    };

    /// <inheritdoc />
    protected override async Task StartStoreAsync()
    {
        _s3 = await S3Server.StartAsync();
        _bucket = await _s3.CreateBucketAsync();
    }

    /// <inheritdoc />
    protected override async ValueTask StopStoreAsync()
    {
        if (_s3 is not null)
        {
            await _s3.DisposeAsync();
        }
    }
}

/// <summary>The fixture on dynalite: Celery's URL for a local DynamoDB, a table of its own.</summary>
public sealed class DynamoDbInteropFixture : AwsInteropFixture
{
    private DynamoDbServer? _dynamo;

    /// <summary>The emulator.</summary>
    public DynamoDbServer Server => _dynamo ?? throw new InvalidOperationException("not started");

    /// <summary>The table.</summary>
    public string Table { get; } = DynamoDbServer.NewTable();

    /// <inheritdoc />
    public override string BackendUrl => Server.Url(Table, "?read=5&write=5");

    /// <inheritdoc />
    protected override async Task StartStoreAsync() => _dynamo = await DynamoDbServer.StartAsync();

    /// <inheritdoc />
    protected override async ValueTask StopStoreAsync()
    {
        if (_dynamo is not null)
        {
            await _dynamo.DisposeAsync();
        }
    }
}
