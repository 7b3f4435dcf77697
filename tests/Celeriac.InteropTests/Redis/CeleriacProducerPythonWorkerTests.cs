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
    public Task PositionalAndKeywordArgs_FromCeleriac_PythonBindsThem() => CeleriacToCelery.ArgumentsBoundByPythonAsync(Client);

    [Fact]
    public Task ValueTypes_EchoedByPython_CeleriacGetsSameValuesAndTypes() => CeleriacToCelery.ValuesEchoedByPythonAsync(Client);

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
    public Task CountdownAndExpires_FromCeleriac_PythonWaitsAndRevokesExpired() => CeleriacToCelery.CountdownAndExpiresHonouredByCeleryAsync(Client, fx.PythonWorker);

    [Fact]
    public Task UnknownTaskName_FromCeleriac_CeleryLogsDiscardsStoresNotRegisteredAndGoesOn() => CeleriacToCelery.UnknownTaskStoredAsNotRegisteredAsync(Client, fx.PythonWorker);

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
