using System.Text.Json;
using Celeriac.TestServers;
using Celeriac.Worker;

namespace Celeriac.InteropTests.RabbitMq;

/// <summary>
/// Python Celery 5.2 and Celeriac on one real rabbitmq-server with rpc:// results, both ways: a Python client's
/// task runs on a Celeriac worker and its result reaches the Python client's reply queue, and the other way round.
/// </summary>
public sealed class RabbitMqInteropTests : IAsyncLifetime
{
    private const string PythonQueue = "rmq.py";
    private const string CeleriacQueue = "rmq.net";
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);
    private RabbitMqServer _server = null!;
    private PythonWorker _python = null!;
    private CeleriacApp _workerApp = null!;
    private CancellationTokenSource _stop = null!;
    private Task _worker = Task.CompletedTask;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _server = await RabbitMqServer.StartAsync();
        _python = await PythonWorker.StartAsync(_server.Url(), "rpc://", PythonQueue, concurrency: 2, nodeName: "py-rmq@localhost");
        _workerApp = new CeleriacApp(new CeleriacOptions { BrokerUrl = _server.Url(), Queues = { CeleriacQueue }, Concurrency = 2 });
        _workerApp.AddTasksFromAssembly(typeof(Quickstart.Tasks).Assembly);
        var worker = new CeleriacWorker(_workerApp);
        _stop = new CancellationTokenSource();
        _worker = Task.Run(() => worker.RunAsync(_stop.Token));
        await Task.WhenAny(worker.Ready, _worker).WaitAsync(s_wait);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _worker.WaitAsync(s_wait);
        _stop.Dispose();
        await _workerApp.DisposeAsync();
        await _python.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task PythonClientWithRpc_CeleriacWorker_ResultsTypesAndErrorsArrive()
    {
        string output = await PythonCelery.RunAsync("""
            import sys, json
            from interop_tasks import add, echo, fail
            q = sys.argv[1]
            out = {'add': add.apply_async((2, 3), queue=q).get(timeout=30),
                   'echo': echo.apply_async(kwargs={'value': {'f': 2.0, 'big': 2**70, 'u': 'żółć 東京', 'n': None}}, queue=q).get(timeout=30)}
            try:
                fail.apply_async(('boom',), queue=q).get(timeout=30)
            except Exception as e:
                out['fail'] = [type(e).__name__, str(e)]
            print(json.dumps(out))
            """, new Dictionary<string, string> { ["CELERY_BROKER_URL"] = _server.Url(), ["CELERY_RESULT_BACKEND"] = "rpc://" }, CeleriacQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        Assert.Equal(5, root.GetProperty("add").GetInt64());
        JsonElement echo = root.GetProperty("echo");
        Assert.Equal("2.0", echo.GetProperty("f").GetRawText());
        Assert.Equal("1180591620717411303424", echo.GetProperty("big").GetRawText());
        Assert.Equal("żółć 東京", echo.GetProperty("u").GetString());
        Assert.Equal(JsonValueKind.Null, echo.GetProperty("n").ValueKind);
        Assert.Equal(["InvalidOperationException", "boom"], root.GetProperty("fail").EnumerateArray().Select(e => e.GetString()!));
    }

    [Fact]
    public async Task CeleriacClientWithRpc_PythonWorker_ResultsAndErrorsArrive()
    {
        await using var client = new CeleriacApp(new CeleriacOptions { BrokerUrl = _server.Url(), DefaultQueue = PythonQueue });
        AsyncResult product = await client.SendTaskAsync("tasks.mul", [6, 7], ct: Ct);
        AsyncResult keyword = await client.SendTaskAsync("tasks.add", kwargs: new Dictionary<string, object?> { ["x"] = 1L << 40, ["y"] = 1 }, ct: Ct);
        AsyncResult failed = await client.SendTaskAsync("tasks.fail", ["kaput"], ct: Ct);

        Assert.Equal(42, await product.GetAsync<long>(s_wait, Ct));
        Assert.Equal((1L << 40) + 1, await keyword.GetAsync<long>(s_wait, Ct));
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => failed.GetAsync<long>(s_wait, Ct));
        Assert.Equal(("ValueError", "kaput"), (error.ExceptionType, error.RemoteMessage));
    }
}
