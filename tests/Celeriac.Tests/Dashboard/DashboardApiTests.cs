using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Dashboard;

/// <summary>One in-process broker, a worker with task events on it, and a dashboard mapped at <c>/celeriac</c>, shared by a class.</summary>
public sealed class DashboardCluster : IAsyncLifetime
{
    public string BrokerUrl { get; } = "memory://dash-" + Guid.NewGuid().ToString("N");

    public string Node { get; } = "dash-" + Guid.NewGuid().ToString("N")[..8] + "@test";

    public ConcurrentDictionary<string, string?> RetryHeaders { get; } = new();

    internal DashboardHost Host { get; private set; } = null!;

    internal RunningWorker Worker { get; private set; } = null!;

    public CeleriacApp Client { get; private set; } = null!;

    private static readonly ConcurrentDictionary<string, int> s_attempts = new();

    public async ValueTask InitializeAsync()
    {
        Host = await DashboardHost.StartAsync(BrokerUrl);
        var workerApp = new CeleriacApp(new CeleriacOptions { BrokerUrl = BrokerUrl, TaskEvents = true, NodeName = Node, Concurrency = 2, HeartbeatInterval = TimeSpan.FromSeconds(1) });
        workerApp.Task("dash.add", (int x, int y) => x + y);
        workerApp.Task("dash.metric", (int x) => x * 2);
        workerApp.Task("dash.fail", string (string why) => throw new InvalidOperationException("boom: " + why));

        // Fails on its first run for a key, succeeds after: what a retry from the dashboard should fix.
        workerApp.Task("dash.flaky", (string key, TaskContext context) =>
        {
            RetryHeaders[context.Id] = context.Headers.Extra.TryGetValue("retry_of", out object? of) ? of as string : null;
            return s_attempts.AddOrUpdate(key, 1, (_, n) => n + 1) == 1 ? throw new TimeoutException("transient " + key) : "done " + key;
        });
        Worker = await RunningWorker.StartAsync(workerApp);
        Client = new CeleriacApp(new CeleriacOptions { BrokerUrl = BrokerUrl });
    }

    public async ValueTask DisposeAsync()
    {
        await Worker.DisposeAsync();
        await Client.DisposeAsync();
        await Host.DisposeAsync();
    }
}

/// <summary>
/// The dashboard's server against a real worker on the in-process broker: the contract's endpoints, Flower's API shapes
/// (compared key by key and JSON type by JSON type with Flower's documented examples), the live stream, retry, and
/// <c>/metrics</c> parsed by a strict Prometheus text parser.
/// </summary>
public sealed class DashboardApiTests(DashboardCluster cluster) : IClassFixture<DashboardCluster>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DashboardHost Host => cluster.Host;

    private async Task<JsonElement> WaitForStateAsync(string id, string state)
    {
        JsonElement task = default;
        bool reached = await Poll.UntilAsync(async () =>
        {
            using HttpResponseMessage r = await Host.Client.GetAsync($"api/dashboard/task/{id}", Ct);
            if (r.StatusCode != HttpStatusCode.OK)
            {
                return false;
            }

            task = JsonDocument.Parse(await r.Content.ReadAsStringAsync(Ct)).RootElement.Clone();
            return task.GetProperty("task").GetProperty("state").GetString() == state;
        }, TimeSpan.FromSeconds(15));
        Assert.True(reached, $"task {id} never reached {state}: {task}");
        return task;
    }

    /// <summary>Flower's documented <c>GET /api/task/info</c> example (flower/api/tasks.py).</summary>
    private const string FlowerTaskInfoExample = """
        {"args": "[2, 2]", "client": null, "clock": 25, "eta": null, "exception": null, "exchange": null, "expires": null,
         "failed": null, "kwargs": "{}", "name": "tasks.add", "received": 1400806241.970742, "result": "'4'", "retried": null,
         "retries": null, "revoked": null, "routing_key": null, "runtime": 2.0037889280356467, "sent": null,
         "started": 1400806241.972624, "state": "SUCCESS", "succeeded": 1400806243.975336,
         "task-id": "91396550-c228-4111-9da4-9d88cfd5ddc6", "timestamp": 1400806243.975336, "traceback": null, "worker": "celery@worker1"}
        """;

    /// <summary>One task of Flower's documented <c>GET /api/tasks</c> example.</summary>
    private const string FlowerTasksExample = """
        {"e42ceb2d-8730-47b5-8b4d-8e0d2a1ef7c9": {"args": "[3, 4]", "client": null, "clock": 1079, "eta": null, "exception": null,
         "exchange": null, "expires": null, "failed": null, "kwargs": "{}", "name": "tasks.add", "received": 1398505411.107885,
         "result": "'7'", "retried": null, "retries": 0, "revoked": null, "routing_key": null, "runtime": 0.01610181899741292,
         "sent": null, "started": 1398505411.108985, "state": "SUCCESS", "succeeded": 1398505411.124802, "timestamp": 1398505411.124802,
         "traceback": null, "uuid": "e42ceb2d-8730-47b5-8b4d-8e0d2a1ef7c9", "worker": "celery@worker1"}}
        """;

    /// <summary>
    /// Every key of Flower's example is in ours with the same JSON type; a null in either is taken as "this field may be
    /// null" (Flower's example has nulls where a field is unset), so only two non-null values must agree in kind.
    /// </summary>
    private static void AssertSameShape(JsonElement flower, JsonElement ours, string path = "$")
    {
        Assert.Equal(JsonValueKind.Object, ours.ValueKind);
        foreach (JsonProperty p in flower.EnumerateObject())
        {
            Assert.True(ours.TryGetProperty(p.Name, out JsonElement mine), $"{path}.{p.Name} is missing from {ours}");
            if (p.Value.ValueKind == JsonValueKind.Null || mine.ValueKind == JsonValueKind.Null)
            {
                continue;
            }

            Assert.True(Kind(p.Value) == Kind(mine), $"{path}.{p.Name}: Flower has {p.Value.ValueKind}, we have {mine.ValueKind} ({mine})");
        }
    }

    private static JsonValueKind Kind(JsonElement e) => e.ValueKind is JsonValueKind.True or JsonValueKind.False ? JsonValueKind.True : e.ValueKind;

    [Fact]
    public async Task Info_ReadOnlyVersionMaskedBrokerAuth()
    {
        JsonElement info = await Host.GetJsonAsync("api/dashboard");
        Assert.False(info.GetProperty("read_only").GetBoolean());
        Assert.False(info.GetProperty("auth").GetBoolean());
        Assert.Equal("0.1.0", info.GetProperty("version").GetString());
        Assert.StartsWith("memory://", info.GetProperty("broker").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TaskSentWhileRunning_AppearsInApiAndStream_AndReachesSuccess()
    {
        var lines = new ConcurrentQueue<string>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using HttpResponseMessage stream = await Host.Client.GetAsync("api/dashboard/stream", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal("text/event-stream", stream.Content.Headers.ContentType?.MediaType);
        Task reading = Task.Run(async () =>
        {
            using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(stop.Token));
            while (await reader.ReadLineAsync(stop.Token) is { } line)
            {
                lines.Enqueue(line);
            }
        }, Ct);

        AsyncResult sent = await cluster.Client.SendTaskAsync("dash.add", [20, 22], ct: Ct);
        JsonElement detail = await WaitForStateAsync(sent.Id, "SUCCESS");
        JsonElement task = detail.GetProperty("task");
        Assert.Equal(("dash.add", "(20, 22)", "42", cluster.Node), (task.GetProperty("name").GetString(), task.GetProperty("args").GetString(), task.GetProperty("result").GetString(), task.GetProperty("worker").GetString()));
        Assert.Equal(["task-received", "task-started", "task-succeeded"], detail.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("type").GetString()));
        Assert.Equal(JsonValueKind.Null, detail.GetProperty("retry_of").ValueKind);

        JsonElement list = await Host.GetJsonAsync($"api/dashboard/tasks?search=name:dash.add&limit=500");
        Assert.Contains(list.GetProperty("tasks").EnumerateArray(), t => t.GetProperty("uuid").GetString() == sent.Id);
        Assert.True(list.GetProperty("total").GetInt64() >= 1);

        bool streamed = await Poll.UntilAsync(() => lines.Any(l => l.StartsWith("data: ", StringComparison.Ordinal) && l.Contains(sent.Id, StringComparison.Ordinal) && l.Contains("\"SUCCESS\"", StringComparison.Ordinal)), TimeSpan.FromSeconds(10));
        Assert.True(streamed, "the stream never carried the task's SUCCESS: " + string.Join(" | ", lines.Take(20)));
        Assert.Contains("event: task", lines);
        Assert.True(await Poll.UntilAsync(() => lines.Contains("event: worker"), TimeSpan.FromSeconds(5)), "the stream never carried a worker row");
        await stop.CancelAsync();
        await Task.WhenAny(reading, Task.Delay(TimeSpan.FromSeconds(5), Ct));
    }

    [Fact]
    public async Task FlowerTaskApi_MatchesFlowersDocumentedShapes()
    {
        AsyncResult sent = await cluster.Client.SendTaskAsync("dash.add", [2, 2], ct: Ct);
        await WaitForStateAsync(sent.Id, "SUCCESS");

        JsonElement info = await Host.GetJsonAsync($"api/task/info/{sent.Id}");
        AssertSameShape(JsonDocument.Parse(FlowerTaskInfoExample).RootElement, info);
        Assert.Equal((sent.Id, "SUCCESS", "4"), (info.GetProperty("task-id").GetString(), info.GetProperty("state").GetString(), info.GetProperty("result").GetString()));

        JsonElement tasks = await Host.GetJsonAsync("api/tasks?taskname=dash.add&limit=1000");
        JsonElement example = JsonDocument.Parse(FlowerTasksExample).RootElement.EnumerateObject().First().Value;
        Assert.True(tasks.TryGetProperty(sent.Id, out JsonElement mine), "api/tasks lacks the task");
        AssertSameShape(example, mine);
        Assert.All(tasks.EnumerateObject(), t => Assert.Equal("dash.add", t.Value.GetProperty("name").GetString()));

        JsonElement types = await Host.GetJsonAsync("api/task/types");
        Assert.Contains("dash.add", types.GetProperty("task-types").EnumerateArray().Select(t => t.GetString()));

        JsonElement result = await Host.GetJsonAsync($"api/task/result/{sent.Id}?timeout=5");
        Assert.Equal((sent.Id, "SUCCESS", 4), (result.GetProperty("task-id").GetString(), result.GetProperty("state").GetString(), result.GetProperty("result").GetInt32()));

        using HttpResponseMessage missing = await Host.Client.GetAsync("api/task/info/no-such-task", Ct);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("Unknown task 'no-such-task'", await missing.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task FlowerApply_AsyncApplyAndSendTask_RunTheTask()
    {
        (HttpStatusCode status, JsonElement body) = await Host.PostAsync("api/task/async-apply/dash.add", """{"args": [1, 2], "countdown": 0}""");
        Assert.Equal(HttpStatusCode.OK, status);
        AssertSameShape(JsonDocument.Parse("""{"state": "PENDING", "task-id": "abc300c7-2922-4069-97b6-a635cc2ac47c"}""").RootElement, body);
        Assert.Equal(3, await cluster.Client.AsyncResult(body.GetProperty("task-id").GetString()!).GetAsync<int>(TimeSpan.FromSeconds(10), Ct));

        (status, body) = await Host.PostAsync("api/task/send-task/dash.add", """{"args": [5], "kwargs": {"y": 6}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(11, await cluster.Client.AsyncResult(body.GetProperty("task-id").GetString()!).GetAsync<int>(TimeSpan.FromSeconds(10), Ct));

        (status, body) = await Host.PostAsync("api/task/apply/dash.add", """{"args": [3, 4]}""");
        Assert.Equal(HttpStatusCode.OK, status);
        AssertSameShape(JsonDocument.Parse("""{"state": "SUCCESS", "task-id": "c60be250-fe52-48df-befb-ac66174076e6", "result": 3}""").RootElement, body);
        Assert.Equal(7, body.GetProperty("result").GetInt32());

        (status, body) = await Host.PostAsync("api/task/async-apply/no.such.task", "{}");
        Assert.Equal((HttpStatusCode.NotFound, "Unknown task 'no.such.task'"), (status, body.GetProperty("error").GetString()));
        (status, body) = await Host.PostAsync("api/task/async-apply/dash.add", """{"args": 5}""");
        Assert.Equal((HttpStatusCode.BadRequest, "args must be an array"), (status, body.GetProperty("error").GetString()));
        (status, body) = await Host.PostAsync("api/task/async-apply/dash.add", """{"bogus": 1}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        (status, _) = await Host.PostAsync("api/task/async-apply/dash.add", "not json");
        Assert.Equal(HttpStatusCode.BadRequest, status);
    }

    [Fact]
    public async Task Workers_RowsFlowerWorkersAndQueues()
    {
        bool inspected = await Poll.UntilAsync(async () =>
        {
            JsonElement rows = await Host.GetJsonAsync("api/dashboard/workers");
            return rows.EnumerateArray().Any(w => w.GetProperty("hostname").GetString() == cluster.Node && w.GetProperty("online").GetBoolean()
                && w.GetProperty("pool_size").ValueKind == JsonValueKind.Number);
        }, TimeSpan.FromSeconds(15));
        Assert.True(inspected, "the worker never showed online with its pool size");
        JsonElement row = (await Host.GetJsonAsync("api/dashboard/workers")).EnumerateArray().Single(w => w.GetProperty("hostname").GetString() == cluster.Node);
        Assert.Equal(2, row.GetProperty("pool_size").GetInt32());
        Assert.Contains("celery", row.GetProperty("queues").EnumerateArray().Select(q => q.GetString()));
        Assert.Equal(3, row.GetProperty("loadavg").GetArrayLength());
        foreach (string key in (string[])["active", "processed", "succeeded", "failed", "retried", "last_heartbeat", "sw_ident", "sw_ver", "sw_sys"])
        {
            Assert.True(row.TryGetProperty(key, out _), "row lacks " + key);
        }

        JsonElement flower = await Host.GetJsonAsync($"api/workers?workername={Uri.EscapeDataString(cluster.Node)}&refresh=1");
        JsonElement mine = flower.GetProperty(cluster.Node);
        foreach (string key in (string[])["stats", "registered", "active_queues", "conf", "active", "scheduled", "reserved", "revoked", "timestamp"])
        {
            Assert.True(mine.TryGetProperty(key, out _), "api/workers lacks " + key);
        }

        // Celery lists a task with a rate limit as "dash.add [rate_limit=100/m]" (another test of the class may set one).
        Assert.Contains("dash.add", mine.GetProperty("registered").EnumerateArray().Select(r => r.GetString()!.Split(' ')[0]));
        Assert.Equal("celery", mine.GetProperty("active_queues")[0].GetProperty("name").GetString());
        JsonElement status = await Host.GetJsonAsync("api/workers?status=1");
        Assert.True(status.GetProperty(cluster.Node).GetBoolean());
        using HttpResponseMessage unknown = await Host.Client.GetAsync("api/workers?workername=nobody@nowhere", Ct);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);

        JsonElement queues = await Host.GetJsonAsync("api/dashboard/queues");
        JsonElement celery = queues.EnumerateArray().Single(q => q.GetProperty("name").GetString() == "celery");
        Assert.Equal(JsonValueKind.Number, celery.GetProperty("messages").ValueKind);
        Assert.Equal(1, celery.GetProperty("consumers").GetInt32());
        JsonElement lengths = await Host.GetJsonAsync("api/queues/length");
        AssertSameShape(JsonDocument.Parse("""{"name": "celery", "messages": 0}""").RootElement, lengths.GetProperty("active_queues")[0]);
    }

    [Fact]
    public async Task WorkerControl_PoolGrowShrinkAndConsumers_AnswerAsFlower()
    {
        Assert.True(await Poll.UntilAsync(() => Host.Ingestor.GetWorker(cluster.Node) is not null, TimeSpan.FromSeconds(10)), "the worker never showed");
        string w = Uri.EscapeDataString(cluster.Node);
        (HttpStatusCode status, JsonElement body) = await Host.PostAsync($"api/worker/queue/add-consumer/{w}?queue=dash-extra");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("dash-extra", body.GetProperty("message").GetString(), StringComparison.Ordinal);
        (status, body) = await Host.PostAsync($"api/worker/queue/cancel-consumer/{w}?queue=dash-extra");
        Assert.Equal(HttpStatusCode.OK, status);
        (status, body) = await Host.PostAsync($"api/task/rate-limit/dash.add?workername={w}&ratelimit=100/m");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(JsonValueKind.String, body.GetProperty("message").ValueKind);
        (status, body) = await Host.PostAsync($"api/task/timeout/dash.add?workername={w}&soft=30&hard=60");
        Assert.Equal(HttpStatusCode.OK, status);

        (status, body) = await Host.PostAsync("api/worker/pool/grow/nobody@nowhere");
        Assert.Equal((HttpStatusCode.NotFound, "Unknown worker 'nobody@nowhere'"), (status, body.GetProperty("error").GetString()));
        (status, body) = await Host.PostAsync($"api/worker/queue/add-consumer/{w}");
        Assert.Equal((HttpStatusCode.BadRequest, "Missing argument queue"), (status, body.GetProperty("error").GetString()));
        (status, body) = await Host.PostAsync($"api/worker/pool/grow/{w}?n=x");
        Assert.Equal(HttpStatusCode.BadRequest, status);
    }

    [Fact]
    public async Task Search_BadQueryOrSort_Is400WithMessage()
    {
        using HttpResponseMessage bad = await Host.Client.GetAsync("api/dashboard/tasks?search=" + Uri.EscapeDataString("state:FAILURE OR"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("OR must be followed by a search term", await bad.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        using HttpResponseMessage sort = await Host.Client.GetAsync("api/tasks?sort_by=nonsense", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, sort.StatusCode);
        using HttpResponseMessage limit = await Host.Client.GetAsync("api/dashboard/tasks?limit=-1", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, limit.StatusCode);
        using HttpResponseMessage detail = await Host.Client.GetAsync("api/dashboard/task/nope", Ct);
        Assert.Equal(HttpStatusCode.NotFound, detail.StatusCode);
        Assert.Equal("Unknown task 'nope'", JsonDocument.Parse(await detail.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task RetryFailedTask_ResendsWithArgsAndHeader_SucceedsAndIsLinked()
    {
        string key = Guid.NewGuid().ToString("N")[..8];
        AsyncResult first = await cluster.Client.SendTaskAsync("dash.flaky", [key], ct: Ct);
        await WaitForStateAsync(first.Id, "FAILURE");

        (HttpStatusCode status, JsonElement body) = await Host.PostAsync($"api/task/retry/{first.Id}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(first.Id, body.GetProperty("retry_of").GetString());
        string newId = body.GetProperty("task-id").GetString()!;
        Assert.NotEqual(first.Id, newId);

        JsonElement retried = await WaitForStateAsync(newId, "SUCCESS");
        Assert.Equal(first.Id, retried.GetProperty("retry_of").GetString());
        Assert.Equal("'done " + key + "'", retried.GetProperty("task").GetProperty("result").GetString());
        Assert.Equal("done " + key, await cluster.Client.AsyncResult(newId).GetAsync<string>(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal(first.Id, cluster.RetryHeaders[newId]);
        JsonElement old = await Host.GetJsonAsync($"api/dashboard/task/{first.Id}");
        Assert.Equal([newId], old.GetProperty("retried_as").EnumerateArray().Select(e => e.GetString()));

        (status, body) = await Host.PostAsync($"api/task/retry/{newId}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("is SUCCESS", body.GetProperty("error").GetString(), StringComparison.Ordinal);
        (status, _) = await Host.PostAsync("api/task/retry/no-such-task");
        Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task RetryAllFailed_MatchingSearch_ResendsEachOnce()
    {
        string tag = "k" + Guid.NewGuid().ToString("N")[..8];
        AsyncResult[] sent = [await cluster.Client.SendTaskAsync("dash.flaky", [tag + "a"], ct: Ct), await cluster.Client.SendTaskAsync("dash.flaky", [tag + "b"], ct: Ct)];
        foreach (AsyncResult r in sent)
        {
            await WaitForStateAsync(r.Id, "FAILURE");
        }

        (HttpStatusCode status, JsonElement body) = await Host.PostAsync("api/tasks/retry?search=" + Uri.EscapeDataString("name:dash.flaky args:" + tag));
        Assert.Equal(HttpStatusCode.OK, status);
        var retried = body.GetProperty("retried").EnumerateArray().ToDictionary(r => r.GetProperty("retry_of").GetString()!, r => r.GetProperty("task-id").GetString()!);
        Assert.Equal(sent.Select(s => s.Id).Order(), retried.Keys.Order());
        foreach (string id in retried.Values)
        {
            await WaitForStateAsync(id, "SUCCESS");
        }

        (_, body) = await Host.PostAsync("api/tasks/retry?search=" + Uri.EscapeDataString("name:dash.flaky args:" + tag));
        Assert.Equal(0, body.GetProperty("retried").GetArrayLength());
    }

    [Fact]
    public async Task Metrics_ParseStrictly_AndCountWhatHappened()
    {
        AsyncResult[] sent = [.. await Task.WhenAll(Enumerable.Range(1, 3).Select(i => cluster.Client.SendTaskAsync("dash.metric", [i], ct: Ct)))];
        foreach (AsyncResult r in sent)
        {
            await WaitForStateAsync(r.Id, "SUCCESS");
        }

        using HttpResponseMessage response = await Host.Client.GetAsync("metrics", Ct);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        (IReadOnlyDictionary<string, string> types, IReadOnlyList<PrometheusText.Sample> samples) = PrometheusText.Parse(await response.Content.ReadAsStringAsync(Ct));

        Assert.Equal("counter", types["flower_events_total"]);
        Assert.Equal("histogram", types["flower_task_runtime_seconds"]);
        Assert.Equal("gauge", types["flower_task_prefetch_time_seconds"]);
        Assert.Equal("gauge", types["flower_worker_prefetched_tasks"]);
        Assert.Equal("gauge", types["flower_worker_online"]);
        Assert.Equal("gauge", types["flower_worker_number_of_currently_executing_tasks"]);
        double Value(string name, params (string, string)[] labels) =>
            samples.Single(s => s.Name == name && labels.All(l => s.Labels.GetValueOrDefault(l.Item1) == l.Item2) && s.Labels.Count == labels.Length).Value;

        foreach (string type in (string[])["task-received", "task-started", "task-succeeded"])
        {
            Assert.Equal(3, Value("flower_events_total", ("worker", cluster.Node), ("type", type), ("task", "dash.metric")));
        }

        Assert.Equal(3, Value("flower_task_runtime_seconds_count", ("worker", cluster.Node), ("task", "dash.metric")));
        Assert.Equal(3, Value("flower_task_runtime_seconds_bucket", ("worker", cluster.Node), ("task", "dash.metric"), ("le", "+Inf")));
        Assert.Equal(0, Value("flower_worker_prefetched_tasks", ("worker", cluster.Node), ("task", "dash.metric")));
        Assert.Equal(1, Value("flower_worker_online", ("worker", cluster.Node)));
        Assert.Equal(15, samples.Count(s => s.Name == "flower_task_runtime_seconds_bucket" && s.Labels["task"] == "dash.metric"));
    }

    [Fact]
    public async Task Stats_ThroughputByMinuteAndRuntimePercentiles()
    {
        AsyncResult sent = await cluster.Client.SendTaskAsync("dash.add", [1, 1], ct: Ct);
        await WaitForStateAsync(sent.Id, "SUCCESS");

        JsonElement stats = await Host.GetJsonAsync("api/dashboard/stats?minutes=60");
        JsonElement minute = stats.GetProperty("throughput").EnumerateArray().Last();
        foreach (string state in (string[])["SUCCESS", "FAILURE", "RETRY", "REVOKED", "RECEIVED"])
        {
            Assert.Equal(JsonValueKind.Number, minute.GetProperty(state).ValueKind);
        }

        Assert.True(stats.GetProperty("throughput").EnumerateArray().Sum(m => m.GetProperty("SUCCESS").GetInt64()) >= 1);
        JsonElement add = stats.GetProperty("runtimes").EnumerateArray().Single(r => r.GetProperty("task").GetString() == "dash.add");
        Assert.True(add.GetProperty("count").GetInt64() >= 1);
        Assert.True(add.GetProperty("p50").GetDouble() <= add.GetProperty("p99").GetDouble());
        Assert.Equal(JsonValueKind.Array, stats.GetProperty("queues").ValueKind);

        using HttpResponseMessage bad = await Host.Client.GetAsync("api/dashboard/stats?minutes=0", Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task HealthcheckAndPages_AnswerUnderThePrefix()
    {
        using HttpResponseMessage health = await Host.Client.GetAsync("healthcheck", Ct);
        Assert.Equal((HttpStatusCode.OK, "OK"), (health.StatusCode, await health.Content.ReadAsStringAsync(Ct)));

        using var noRedirect = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = Host.Client.BaseAddress };
        using HttpResponseMessage bare = await noRedirect.GetAsync(Host.Client.BaseAddress!.AbsolutePath.TrimEnd('/'), Ct);
        Assert.Equal(HttpStatusCode.Redirect, bare.StatusCode);
        Assert.Equal("/celeriac/", bare.Headers.Location?.OriginalString);
        using HttpResponseMessage missing = await Host.Client.GetAsync("static/no-such-file.js", Ct);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using HttpResponseMessage escape = await Host.Client.GetAsync("static/..%2F..%2Fsecret", Ct);
        Assert.Equal(HttpStatusCode.NotFound, escape.StatusCode);
    }
}
