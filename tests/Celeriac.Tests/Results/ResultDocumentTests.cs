using System.Text.Json;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Results;

/// <summary>
/// The documents a worker stores (read as bytes from a file:// backend) have the keys, key order and JSON
/// kinds of the ones Celery stored (redis-result-*.json).
/// </summary>
public sealed class ResultDocumentTests : IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-results-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static JsonElement Captured(string fixture)
    {
        using JsonDocument doc = WireSamples.Load(fixture + ".json");
        return JsonAssert.Parse(doc.RootElement.GetProperty("value").GetProperty("raw").GetString()!);
    }

    private JsonElement Stored(string id) => JsonAssert.Parse(File.ReadAllBytes(Path.Join(_directory, "celery-task-meta-" + id)));

    private static void AssertSameShape(JsonElement captured, JsonElement written)
    {
        Assert.Equal(JsonAssert.Keys(captured), JsonAssert.Keys(written));
        foreach (JsonProperty p in captured.EnumerateObject())
        {
            Assert.True(JsonAssert.Kind(p.Value) == JsonAssert.Kind(written.GetProperty(p.Name)), $"{p.Name}: {JsonAssert.Kind(p.Value)} vs {JsonAssert.Kind(written.GetProperty(p.Name))}");
        }
    }

    [Fact]
    public async Task Worker_SuccessFailureAndStarted_SameKeysOrderAndKindsAsCelery()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.ResultBackend = "file://" + _directory;
            o.TrackStarted = true;
            o.NodeName = "wire@test";
        });
        app.Task("wireapp.add", (int x, int y) => x + y);
        app.Task("wireapp.fail", new Func<int>(() => throw new ArgumentException("bad value")));
        app.Task("wireapp.sleep", async () =>
        {
            started.SetResult();
            await release.Task;
            return 3;
        });
        await using RunningWorker w = await RunningWorker.StartAsync(app);

        AsyncResult success = await app.SendTaskAsync("wireapp.add", [2, 3], ct: Ct);
        await success.WaitAsync(s_wait, Ct);
        AsyncResult failure = await app.SendTaskAsync("wireapp.fail", ct: Ct);
        await failure.WaitAsync(s_wait, Ct);
        AsyncResult sleeping = await app.SendTaskAsync("wireapp.sleep", ct: Ct);
        await started.Task.WaitAsync(s_wait, Ct);
        JsonElement startedDoc = Stored(sleeping.Id);
        release.SetResult();
        await sleeping.WaitAsync(s_wait, Ct);

        JsonElement successDoc = Stored(success.Id);
        AssertSameShape(Captured("redis-result-success"), successDoc);
        Assert.Equal(5, successDoc.GetProperty("result").GetInt32());
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$", successDoc.GetProperty("date_done").GetString());

        JsonElement failureDoc = Stored(failure.Id);
        AssertSameShape(Captured("redis-result-failure"), failureDoc);
        Assert.Equal(["exc_type", "exc_message", "exc_module"], JsonAssert.Keys(failureDoc.GetProperty("result")));
        Assert.Equal("ArgumentException", failureDoc.GetProperty("result").GetProperty("exc_type").GetString());
        Assert.Equal("bad value", failureDoc.GetProperty("result").GetProperty("exc_message")[0].GetString());

        AssertSameShape(Captured("redis-result-started"), startedDoc);
        Assert.Equal(TaskStates.Started, startedDoc.GetProperty("status").GetString());
        Assert.Equal(["pid", "hostname"], JsonAssert.Keys(startedDoc.GetProperty("result")));
        Assert.Equal(Environment.ProcessId, startedDoc.GetProperty("result").GetProperty("pid").GetInt32());
        Assert.Equal("wire@test", startedDoc.GetProperty("result").GetProperty("hostname").GetString());
    }

    [Fact]
    public async Task Worker_ResultExtended_StoresNameArgsKwargsWorkerRetriesQueueInCeleryOrder()
    {
        CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.ResultBackend = "file://" + _directory;
            o.ResultExtended = true;
            o.NodeName = "ext@test";
        });
        app.Task("t.add", (int x, int y) => x + y);
        await using RunningWorker w = await RunningWorker.StartAsync(app);

        AsyncResult result = await app.SendTaskAsync("t.add", [2], new Dictionary<string, object?> { ["y"] = 3 }, ct: Ct);
        TaskResultMeta meta = await result.WaitAsync(s_wait, Ct);
        JsonElement doc = Stored(result.Id);

        Assert.Equal(["status", "result", "traceback", "children", "date_done", "name", "args", "kwargs", "worker", "retries", "queue", "task_id"], JsonAssert.Keys(doc));
        Assert.Equal("t.add", doc.GetProperty("name").GetString());
        JsonAssert.Equal(JsonAssert.Parse("[2]"), doc.GetProperty("args"));
        JsonAssert.Equal(JsonAssert.Parse("{\"y\": 3}"), doc.GetProperty("kwargs"));
        Assert.Equal("ext@test", doc.GetProperty("worker").GetString());
        Assert.Equal(0, doc.GetProperty("retries").GetInt32());
        Assert.Equal("celery", doc.GetProperty("queue").GetString());
        Assert.Equal("t.add", meta.Extended?.Name);
        Assert.Equal("celery", meta.Extended?.Queue);
    }
}
