using System.Collections.Concurrent;
using Celeriac.Worker;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Celeriac.BrowserTests.Support;

/// <summary>Settings of the dashboard a test hosts.</summary>
public sealed record DashboardSettings
{
    /// <summary>Whether the dashboard refuses every action and shows none.</summary>
    public bool ReadOnly { get; init; }

    /// <summary><c>user:password</c>, or null for no authentication.</summary>
    public string? BasicAuth { get; init; }

    /// <summary>Whether to run the in-process worker.</summary>
    public bool WithWorker { get; init; } = true;

    /// <summary>The in-process worker's node name (default: one per redis database).</summary>
    public string? NodeName { get; init; }
}

/// <summary>
/// What a user of the dashboard has: a real broker (a redis database of the test's own), a real Celeriac worker in
/// this process sending events, a client that sends tasks, and the dashboard itself hosted in-process by Kestrel on
/// 127.0.0.1 (a free port) under <c>/celeriac</c>, with its store in a temp directory.
/// </summary>
public sealed class DashboardCluster : IAsyncDisposable
{
    /// <summary>The prefix the dashboard is mapped under.</summary>
    public const string Prefix = "/celeriac";

    private readonly ConcurrentDictionary<string, int> _flakyAttempts = new(StringComparer.Ordinal);
    private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("celeriac-dashui-").FullName;
    private readonly CancellationTokenSource _stopWorker = new();
    private CeleriacApp? _workerApp;
    private Task? _workerRun;
    private WebApplication? _web;

    private DashboardCluster(string brokerUrl, string nodeName)
    {
        BrokerUrl = brokerUrl;
        NodeName = nodeName;
    }

    /// <summary>The broker (and result backend) URL.</summary>
    public string BrokerUrl { get; }

    /// <summary>The in-process worker's node name.</summary>
    public string NodeName { get; }

    /// <summary>The dashboard's root URL, ending in a slash.</summary>
    public string Url { get; private set; } = "";

    /// <summary>A client that sends tasks (no worker of its own).</summary>
    public CeleriacApp Client { get; private set; } = null!;

    /// <summary>A working directory of the test's own (the dashboard's store lives here).</summary>
    public string WorkDir => _dir;

    /// <summary>Sends a task through <see cref="Client"/>.</summary>
    public Task<AsyncResult> SendAsync(string name, IReadOnlyList<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null) =>
        Client.SendTaskAsync(name, args, kwargs, null, TestContext.Current.CancellationToken);

    /// <summary>Starts the worker (unless told otherwise) and the dashboard on a database of the test's own.</summary>
    public static async Task<DashboardCluster> StartAsync(RedisFixture redis, DashboardSettings? settings = null)
    {
        settings ??= new DashboardSettings();
        int db = await redis.TakeDatabaseAsync();
        var cluster = new DashboardCluster(redis.Server.Url(db), settings.NodeName ?? $"ui{db}@localhost");
        try
        {
            cluster.Client = new CeleriacApp(cluster.Options());
            if (settings.WithWorker)
            {
                await cluster.StartWorkerAsync();
            }

            await cluster.StartDashboardAsync(settings);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Options on this cluster's broker; the result backend is the same redis database.</summary>
    public CeleriacOptions Options(Action<CeleriacOptions>? configure = null)
    {
        var options = new CeleriacOptions { BrokerUrl = BrokerUrl, ResultBackend = BrokerUrl, TaskSendSentEvent = true };
        configure?.Invoke(options);
        return options;
    }

    /// <summary>The test tasks the in-process worker runs.</summary>
    private void RegisterTasks(CeleriacApp app)
    {
        app.Task("test.add", (int x, int y) => x + y);
        app.Task("test.mul", (int x, int y) => x * y);
        app.Task("test.tagged", (string tag, int n) => $"{tag}-{n}");
        app.Task("test.sleep", async (double seconds, CancellationToken ct) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(seconds), ct);
            return seconds;
        });
        app.Task("test.fail", new Func<string, string>(why => throw new InvalidOperationException(why)));

        // Fails the first time it runs for a key and succeeds every time after: a failure that a retry cures.
        app.Task("test.flaky", new Func<string, string>(key =>
        {
            if (_flakyAttempts.AddOrUpdate(key, 1, (_, n) => n + 1) == 1)
            {
                throw new InvalidOperationException($"first attempt for {key} fails");
            }

            return "ok " + key;
        }));
    }

    private async Task StartWorkerAsync()
    {
        (_workerApp, _workerRun) = await RunWorkerAsync(NodeName, 2, _stopWorker.Token);
    }

    /// <summary>Starts another in-process worker on the cluster's broker; stop it by cancelling <paramref name="stop"/>.</summary>
    public async Task<(CeleriacApp App, Task Run)> RunWorkerAsync(string nodeName, int concurrency, CancellationToken stop)
    {
        var app = new CeleriacApp(Options(o =>
        {
            o.NodeName = nodeName;
            o.Concurrency = concurrency;
            o.TaskEvents = true;
            o.TrackStarted = true;
            o.HeartbeatInterval = TimeSpan.FromSeconds(1);
        }));
        RegisterTasks(app);
        var worker = new CeleriacWorker(app);
        Task run = Task.Run(() => worker.RunAsync(stop), CancellationToken.None);
        await Task.WhenAny(worker.Ready, run).WaitAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        if (run.IsCompleted)
        {
            await run;
        }

        return (app, run);
    }

    private async Task StartDashboardAsync(DashboardSettings settings)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddCeleriac(o =>
        {
            o.BrokerUrl = BrokerUrl;
            o.ResultBackend = BrokerUrl;
        });
        builder.Services.AddCeleriacDashboard(o =>
        {
            o.ReadOnly = settings.ReadOnly;
            o.BasicAuth = settings.BasicAuth;
            o.StoreUrl = "sqlite:///" + Path.Join(_dir, "dashboard.db");
        });
        _web = builder.Build();
        _web.MapCeleriacDashboard(Prefix);
        await _web.StartAsync(TestContext.Current.CancellationToken);
        Url = _web.Urls.Single() + Prefix + "/";
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_web is not null)
        {
            using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
            {
                await _web.StopAsync(stop.Token);
            }

            await _web.DisposeAsync();
        }

        await _stopWorker.CancelAsync();
        if (_workerRun is not null)
        {
            try
            {
                await _workerRun.WaitAsync(TimeSpan.FromSeconds(15));
            }
            catch (Exception)
            {
                // Torn down regardless.
            }
        }

        if (_workerApp is not null)
        {
            await _workerApp.DisposeAsync();
        }

        if (Client is not null)
        {
            await Client.DisposeAsync();
        }

        _stopWorker.Dispose();
        try
        {
            System.IO.Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // A file the store still closes; the temp dir is disposable.
        }
    }
}
