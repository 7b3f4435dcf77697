using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Celeriac.InteropTests.Redis;

namespace Celeriac.InteropTests.Dashboard;

/// <summary>
/// The dashboard on a real Redis with real workers: a Python Celery worker's events show up like Celeriac's (its task
/// events switched on by the dashboard's <c>enable_events</c>, as Flower does), a Celeriac worker process killed with
/// SIGKILL turns offline once its heartbeat window passes, and the queues page shows the broker's real length.
/// </summary>
public sealed class DashboardRedisInteropTests(RedisInteropFixture fx) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-dash-interop-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task PythonCeleryWorker_EventsShowUp_WorkerOnlineTasksWithStatesArgsAndResults()
    {
        string queue = "dash-py-" + Guid.NewGuid().ToString("N")[..8];
        string node = "dash-py-" + Guid.NewGuid().ToString("N")[..8] + "@localhost";
        await using InteropDashboard dashboard = await InteropDashboard.StartAsync(new CeleriacOptions { BrokerUrl = fx.BrokerUrl, ResultBackend = fx.BackendUrl });
        await using CeleriacApp client = fx.NewApp(o => o.DefaultQueue = queue);

        // Prefork, as EventsInteropTests explains (Celery 5.2's dispatcher loses events under -P threads); -E and heartbeats on.
        await using CeleryCliProcess worker = await CeleryCliProcess.StartAsync(fx.PythonEnvironment, " ready.", TimeSpan.FromSeconds(30),
            "worker", "-P", "prefork", "-c", "2", "-Q", queue, "-n", node, "-E", "--without-gossip", "--without-mingle", "-l", "info");
        Assert.True(await PollAsync(async () => (await RowAsync(dashboard, node)) is { ValueKind: JsonValueKind.Object } row && row.GetProperty("online").GetBoolean(), TimeSpan.FromSeconds(30)),
            "the Celery worker never showed online\n" + worker.Output);

        AsyncResult add = await client.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
        Assert.Equal(5, await add.GetAsync<int>(TimeSpan.FromSeconds(30), Ct));
        JsonElement task = (await dashboard.WaitForTaskAsync(add.Id, "SUCCESS", TimeSpan.FromSeconds(15))).GetProperty("task");
        Assert.Equal(("tasks.add", "(2, 3)", "5", node),
            (task.GetProperty("name").GetString(), task.GetProperty("args").GetString(), task.GetProperty("result").GetString(), task.GetProperty("worker").GetString()));
        Assert.Equal(JsonValueKind.Number, task.GetProperty("runtime").ValueKind);

        AsyncResult failing = await client.SendTaskAsync("tasks.fail", ["from python"], ct: Ct);
        JsonElement failed = (await dashboard.WaitForTaskAsync(failing.Id, "FAILURE", TimeSpan.FromSeconds(15))).GetProperty("task");
        Assert.Equal("ValueError('from python')", failed.GetProperty("exception").GetString());
        Assert.Contains("from python", failed.GetProperty("traceback").GetString(), StringComparison.Ordinal);

        JsonElement python = await RowAsync(dashboard, node);
        Assert.Equal("py-celery", python.GetProperty("sw_ident").GetString());
        Assert.True(await PollAsync(async () => (await RowAsync(dashboard, node)).GetProperty("failed").GetInt64() == 1, TimeSpan.FromSeconds(5)), "failed count");
        Assert.True(await PollAsync(async () => (await RowAsync(dashboard, node)).GetProperty("pool_size").ValueKind == JsonValueKind.Number, TimeSpan.FromSeconds(15)), "never inspected");
        Assert.Contains(queue, (await RowAsync(dashboard, node)).GetProperty("queues").EnumerateArray().Select(q => q.GetString()));

        string metrics = await dashboard.Client.GetStringAsync("metrics", Ct);
        Assert.Contains($"flower_events_total{{worker=\"{node}\",type=\"task-failed\",task=\"tasks.fail\"}} 1.0", metrics, StringComparison.Ordinal);
        Assert.Contains($"flower_worker_online{{worker=\"{node}\"}} 1.0", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CeleriacWorkerKilledWithSigkill_TurnsOfflineAfterItsHeartbeatWindow_InApiStreamAndMetrics()
    {
        string node = "dash-killed-" + Guid.NewGuid().ToString("N")[..8] + "@localhost";
        await using InteropDashboard dashboard = await InteropDashboard.StartAsync(new CeleriacOptions { BrokerUrl = fx.BrokerUrl, ResultBackend = fx.BackendUrl });
        var lines = new ConcurrentQueue<string>();
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using HttpResponseMessage stream = await dashboard.Client.GetAsync("api/dashboard/stream", HttpCompletionOption.ResponseHeadersRead, Ct);
        Task reading = Task.Run(async () =>
        {
            try
            {
                using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(stopReading.Token));
                while (await reader.ReadLineAsync(stopReading.Token) is { } line)
                {
                    lines.Enqueue(line);
                }
            }
            catch (OperationCanceledException)
            {
                // Done reading.
            }
        }, Ct);

        var env = new Dictionary<string, string> { ["CELERIAC_WITHOUT_MINGLE"] = "true" };
        await using CeleriacWorkerProcess worker = await CeleriacWorkerProcess.StartAsync(_dir, fx.BrokerUrl, fx.BackendUrl, "dash-killed." + node, 1, node, env);
        JsonElement row = default;
        Assert.True(await PollAsync(async () => (row = await RowAsync(dashboard, node)).ValueKind == JsonValueKind.Object && row.GetProperty("online").GetBoolean(), TimeSpan.FromSeconds(30)),
            "the worker never showed online");
        double freq = row.GetProperty("freq").GetDouble();

        using (var process = Process.GetProcessById(worker.Id))
        {
            process.Kill(); // SIGKILL: no worker-offline is sent
            await process.WaitForExitAsync(Ct);
        }

        var sinceKill = Stopwatch.StartNew();
        Assert.True(await PollAsync(async () => !(await RowAsync(dashboard, node)).GetProperty("online").GetBoolean(), TimeSpan.FromSeconds(30)), "the killed worker stayed online");
        Assert.True(sinceKill.Elapsed <= TimeSpan.FromSeconds((2 * freq) + 2), $"offline {sinceKill.Elapsed.TotalSeconds:F1} s after the kill (heartbeat every {freq} s)");

        Assert.True(await PollAsync(() => Task.FromResult(lines.Any(l => l.StartsWith("data: ", StringComparison.Ordinal) && l.Contains(node, StringComparison.Ordinal) && l.Contains("\"online\":false", StringComparison.Ordinal))), TimeSpan.FromSeconds(5)),
            "the stream never said the worker went offline");
        string metrics = await dashboard.Client.GetStringAsync("metrics", Ct);
        Assert.Contains($"flower_worker_online{{worker=\"{node}\"}} 0.0", metrics, StringComparison.Ordinal);
        await stopReading.CancelAsync();
        await reading.WaitAsync(TimeSpan.FromSeconds(5), Ct);
    }

    [Fact]
    public async Task Queues_ShowTheBrokersRealLength()
    {
        string queue = "dash-len-" + Guid.NewGuid().ToString("N")[..8];
        await using CeleriacApp client = fx.NewApp(o => o.DefaultQueue = queue);
        for (int i = 0; i < 7; i++)
        {
            await client.SendTaskAsync("nobody.consumes", [i], ct: Ct);
        }

        await using InteropDashboard dashboard = await InteropDashboard.StartAsync(new CeleriacOptions { BrokerUrl = fx.BrokerUrl, ResultBackend = fx.BackendUrl, DefaultQueue = queue });
        JsonElement queues = await dashboard.GetJsonAsync("api/dashboard/queues");
        JsonElement mine = queues.EnumerateArray().Single(q => q.GetProperty("name").GetString() == queue);
        Assert.Equal((7, 7), (mine.GetProperty("messages").GetInt64(), mine.GetProperty("ready").GetInt64()));
        Assert.Equal(0, mine.GetProperty("consumers").GetInt32());
        JsonElement flower = await dashboard.GetJsonAsync("api/queues/length");
        Assert.Equal(7, flower.GetProperty("active_queues").EnumerateArray().Single(q => q.GetProperty("name").GetString() == queue).GetProperty("messages").GetInt64());

        // A queue a worker consumes is listed from its active_queues, with its consumer.
        Assert.True(await PollAsync(async () => (await dashboard.GetJsonAsync("api/dashboard/queues")).EnumerateArray()
            .Any(q => q.GetProperty("name").GetString() == RedisInteropFixture.PythonQueue), TimeSpan.FromSeconds(15)), "the Python worker's queue was never listed");
        await client.Transport.PurgeAsync(queue, Ct);
    }

    private static async Task<JsonElement> RowAsync(InteropDashboard dashboard, string node) =>
        (await dashboard.GetJsonAsync("api/dashboard/workers")).EnumerateArray().FirstOrDefault(w => w.GetProperty("hostname").GetString() == node);

    private static async Task<bool> PollAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed >= timeout)
            {
                return false;
            }

            await Task.Delay(50, Ct);
        }

        return true;
    }
}
