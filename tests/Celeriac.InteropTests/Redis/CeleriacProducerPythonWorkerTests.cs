using System.Numerics;
using System.Text.Json;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// A Celeriac client sends, over a real Redis, to a real Celery 5.2 worker running the Quickstart's tasks in
/// Python, and reads what Celery stored through Celeriac's Redis result backend.
/// </summary>
public sealed class CeleriacProducerPythonWorkerTests(RedisInteropFixture fx)
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private CeleriacApp Client => fx.Client;

    [Fact]
    public async Task PythonToPython_OverTheFixturesRedis_Works()
    {
        // The fixture itself, without Celeriac: a Python client and the Python worker.
        string output = await fx.RunPythonAsync("""
            import sys
            from interop_tasks import add
            from interop_client import report
            report([add.apply_async((2, 3), queue=sys.argv[1])])
            """, RedisInteropFixture.PythonQueue);

        Assert.Equal("5", PythonOutcome.ParseList(output)[0].ValueJson);
    }

    [Fact]
    public async Task PositionalAndKeywordArgs_FromCeleriac_PythonBindsThem()
    {
        AsyncResult positional = await Client.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
        AsyncResult keywords = await Client.SendTaskAsync("tasks.add", kwargs: new Dictionary<string, object?> { ["x"] = 4, ["y"] = 5 }, ct: Ct);
        AsyncResult mixed = await Client.SendTaskAsync("tasks.add", [10], new Dictionary<string, object?> { ["y"] = 7 }, ct: Ct);
        AsyncResult mul = await Client.SendTaskAsync("tasks.mul", kwargs: new Dictionary<string, object?> { ["y"] = 6, ["x"] = 7 }, ct: Ct);

        Assert.Equal(5, await positional.GetAsync<long>(s_wait, Ct));
        Assert.Equal(9, await keywords.GetAsync<long>(s_wait, Ct));
        Assert.Equal(17, await mixed.GetAsync<long>(s_wait, Ct));
        Assert.Equal(42, await mul.GetAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task ValueTypes_EchoedByPython_CeleriacGetsSameValuesAndTypes()
    {
        // What Celeriac sends, and the JSON Python's echo returns for it: a float stays a float (2.0), a big
        // integer an exact int, text any Unicode.
        (object? Value, string Expected)[] cases =
        [
            ("héllo", "\"héllo\""),
            (2.0, "2.0"),
            (BigInteger.Pow(2, 64) + 1, "18446744073709551617"),
            (-BigInteger.Pow(2, 70), "-1180591620717411303424"),
            (new List<object?> { 1L, "a", null, 2.5, new List<object?> { true, false } }, """[1,"a",null,2.5,[true,false]]"""),
            (new Dictionary<string, object?> { ["k"] = new List<object?> { 1L, new Dictionary<string, object?> { ["n"] = null } }, ["ü"] = "x", ["f"] = 0.1 }, """{"k":[1,{"n":null}],"ü":"x","f":0.1}"""),
            (null, "null"),
            ("żółć 東京 🎉", "\"żółć 東京 🎉\""),
            (true, "true"),
            (0L, "0"),
            (-7L, "-7"),
            (1e300, "1e+300"),
            ("", "\"\""),
        ];
        var sent = new List<AsyncResult>();
        foreach ((object? value, _) in cases)
        {
            sent.Add(await Client.SendTaskAsync("tasks.echo", [value], ct: Ct));
        }

        AsyncResult total = await Client.SendTaskAsync("tasks.xsum", [new List<object?> { BigInteger.Pow(2, 64), BigInteger.Pow(2, 64), 1L }], ct: Ct);

        for (int i = 0; i < cases.Length; i++)
        {
            TaskResultMeta meta = await sent[i].WaitAsync(s_wait, Ct);
            Assert.True(meta.Status == TaskStates.Success, $"echo({cases[i].Expected}) ended {meta.Status}: {meta.Exception?.Type}: {meta.Exception?.Message}");
            Assert.Equal(JsonText.Canonical(cases[i].Expected), JsonText.Canonical(meta.Result));
        }

        // Python added the big integers as ints, exactly.
        Assert.Equal("36893488147419103233", JsonText.Canonical((await total.WaitAsync(s_wait, Ct)).Result));
    }

    [Fact]
    public async Task FailingTask_RunByPython_CeleriacSeesValueErrorAndStates()
    {
        AsyncResult failed = await Client.SendTaskAsync("tasks.fail", ["bad value żółć"], ct: Ct);
        AsyncResult slow = await Client.SendTaskAsync("tasks.sleep", [0.5], ct: Ct);

        var error = await Assert.ThrowsAsync<TaskFailedException>(() => failed.GetAsync<JsonElement>(s_wait, Ct));
        Assert.Equal((TaskStates.Failure, "ValueError", "builtins", "bad value żółć"), (error.State, error.ExceptionType, error.ExceptionModule, error.RemoteMessage));
        Assert.Contains("ValueError: bad value żółć", error.RemoteTraceback, StringComparison.Ordinal);

        TaskResultMeta meta = await Client.ResultBackend.WaitAsync(failed.Id, Ct).AsTask().WaitAsync(s_wait, Ct);
        Assert.Equal((TaskStates.Failure, "ValueError", "bad value żółć"), (meta.Status, meta.Exception?.Type, meta.Exception?.Message));

        // The Python worker runs with task_track_started: Celeriac reads STARTED and Celery's {pid, hostname}.
        TaskResultMeta started = await PollAsync(slow.Id, m => m?.Status is TaskStates.Started or TaskStates.Success);
        Assert.Equal(TaskStates.Started, started.Status);
        Assert.Equal(RedisInteropFixture.PythonNode, started.ResultElement.GetProperty("hostname").GetString());
        Assert.Equal(0.5, await slow.GetAsync<double>(s_wait, Ct));
    }

    [Fact]
    public async Task CountdownAndExpires_FromCeleriac_PythonWaitsAndRevokesExpired()
    {
        DateTimeOffset sentAt = TimeProvider.System.GetUtcNow();
        AsyncResult later = await Client.SendTaskAsync("tasks.add", [1, 2], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(1.5) }, ct: Ct);
        AsyncResult expired = await Client.SendTaskAsync("tasks.add", [3, 4], options: new ApplyOptions { Expires = sentAt - TimeSpan.FromSeconds(5) }, ct: Ct);
        AsyncResult fresh = await Client.SendTaskAsync("tasks.add", [5, 6], options: new ApplyOptions { ExpiresIn = TimeSpan.FromSeconds(60) }, ct: Ct);

        TaskResultMeta laterMeta = await later.WaitAsync(s_wait, Ct);
        Assert.Equal((TaskStates.Success, "3"), (laterMeta.Status, JsonText.Canonical(laterMeta.Result)));
        Assert.NotNull(laterMeta.DateDone);
        Assert.InRange(laterMeta.DateDone.Value - sentAt, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(15));

        TaskResultMeta expiredMeta = await expired.WaitAsync(s_wait, Ct);
        Assert.Equal((TaskStates.Revoked, "TaskRevokedError", "expired"), (expiredMeta.Status, expiredMeta.Exception?.Type, expiredMeta.Exception?.Message));
        var revoked = await Assert.ThrowsAsync<TaskFailedException>(() => expired.GetAsync<long>(s_wait, Ct));
        Assert.Equal(TaskStates.Revoked, revoked.State);
        await fx.PythonWorker.WaitForLogAsync($"Discarding revoked task: tasks.add[{expired.Id}]", s_wait);
        Assert.DoesNotContain($"tasks.add[{expired.Id}] succeeded", fx.PythonWorker.Log, StringComparison.Ordinal);

        Assert.Equal(11, await fresh.GetAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task UnknownTaskName_FromCeleriac_CeleryLogsDiscardsStoresNotRegisteredAndGoesOn()
    {
        string name = "tasks.unknown_" + Guid.NewGuid().ToString("N")[..8];
        AsyncResult unknown = await Client.SendTaskAsync(name, [1], ct: Ct);
        AsyncResult after = await Client.SendTaskAsync("tasks.add", [20, 22], ct: Ct);

        // What Celery 5.2.6 really does (worker/consumer/consumer.py on_unknown_task): it logs the error, rejects
        // the message (it is not redelivered) and ALSO stores FAILURE with NotRegistered(name), i.e.
        // {"exc_type": "NotRegistered", "exc_message": ["<name>"], "exc_module": "celery.exceptions"}.
        await fx.PythonWorker.WaitForLogAsync($"Received unregistered task of type '{name}'", s_wait);
        await fx.PythonWorker.WaitForLogAsync("The message has been ignored and discarded.", s_wait);
        TaskResultMeta meta = await unknown.WaitAsync(s_wait, Ct);
        Assert.Equal((TaskStates.Failure, "NotRegistered", "celery.exceptions", name), (meta.Status, meta.Exception?.Type, meta.Exception?.Module, meta.Exception?.Message));
        Assert.Equal(42, await after.GetAsync<long>(s_wait, Ct));
    }

    [Fact]
    public async Task FiveHundredTasksInFlight_FromCeleriac_AllResultsCorrect()
    {
        var sent = new AsyncResult[500];
        for (int i = 0; i < sent.Length; i++)
        {
            sent[i] = await Client.SendTaskAsync("tasks.add", [i, i], ct: Ct);
        }

        long[] values = await Task.WhenAll(sent.Select(r => r.GetAsync<long>(TimeSpan.FromSeconds(60), Ct)));
        Assert.Equal(Enumerable.Range(0, 500).Select(i => 2L * i), values);
    }

    [Fact]
    public async Task RevokeFromPython_OfTaskCeleriacSent_CeleriacSeesRevoked()
    {
        // A Python client revokes what Celeriac sent; Celeriac then reads REVOKED.
        // The countdown keeps the task held in the Celery worker's timer until the revoke has been acknowledged
        // (a Python client starts in well under a second; 5 s leaves room on a loaded machine).
        AsyncResult held = await Client.SendTaskAsync("tasks.add", [1, 1], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(5) }, ct: Ct);
        string output = await fx.RunPythonAsync("""
            import sys, json
            from interop_tasks import app
            print(json.dumps(app.control.revoke(sys.argv[1], reply=True, timeout=10, limit=1, destination=[sys.argv[2]])))
            """, held.Id, RedisInteropFixture.PythonNode);
        Assert.Contains(RedisInteropFixture.PythonNode, output, StringComparison.Ordinal);

        TaskResultMeta meta = await held.WaitAsync(s_wait, Ct);
        Assert.Equal((TaskStates.Revoked, "TaskRevokedError", "revoked"), (meta.Status, meta.Exception?.Type, meta.Exception?.Message));
        await fx.PythonWorker.WaitForLogAsync($"Discarding revoked task: tasks.add[{held.Id}]", s_wait);
        Assert.DoesNotContain($"tasks.add[{held.Id}] succeeded", fx.PythonWorker.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RevokeFromCeleriac_OfTaskQueuedForPython_CeleryStoresRevokedWithoutRunning()
    {
        // The countdown keeps the task in the Celery worker's timer while the revoke broadcast arrives.
        AsyncResult held = await Client.SendTaskAsync("tasks.add", [2, 2], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(3) }, ct: Ct);
        await fx.PythonWorker.WaitForLogAsync($"Task tasks.add[{held.Id}] received", s_wait);
        await Client.RevokeAsync([held.Id], Ct);
        await fx.PythonWorker.WaitForLogAsync($"Tasks flagged as revoked: {held.Id}", s_wait);

        TaskResultMeta meta = await held.WaitAsync(s_wait, Ct);
        Assert.Equal((TaskStates.Revoked, "TaskRevokedError", "revoked"), (meta.Status, meta.Exception?.Type, meta.Exception?.Message));
        await fx.PythonWorker.WaitForLogAsync($"Discarding revoked task: tasks.add[{held.Id}]", s_wait);
        Assert.DoesNotContain($"tasks.add[{held.Id}] succeeded", fx.PythonWorker.Log, StringComparison.Ordinal);
    }

    private async Task<TaskResultMeta> PollAsync(string id, Func<TaskResultMeta?, bool> done)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(s_wait);
        while (true)
        {
            TaskResultMeta? meta = await Client.ResultBackend.GetAsync(id, timeout.Token);
            if (done(meta))
            {
                return meta!;
            }

            await Task.Delay(10, timeout.Token);
        }
    }
}
