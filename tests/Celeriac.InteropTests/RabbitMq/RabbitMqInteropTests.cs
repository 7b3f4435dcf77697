using System.Text.Json;

namespace Celeriac.InteropTests.RabbitMq;

/// <summary>
/// Python Celery 5.2 and Celeriac on one real rabbitmq-server with rpc:// results, both ways: a Python client's
/// task runs on a Celeriac worker and its result reaches the Python client's reply queue, and the other way round.
/// </summary>
[Collection(RabbitMqInteropGroup.Name)]
public sealed class RabbitMqInteropTests(RabbitMqInteropFixture fx)
{
    private const string PythonQueue = RabbitMqInteropFixture.PythonQueue;
    private const string CeleriacQueue = RabbitMqInteropFixture.CeleriacQueue;
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

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
            """, fx.PythonEnvironment, CeleriacQueue);

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
        CeleriacApp client = fx.Client;
        AsyncResult product = await client.SendTaskAsync("tasks.mul", [6, 7], ct: Ct);
        AsyncResult keyword = await client.SendTaskAsync("tasks.add", kwargs: new Dictionary<string, object?> { ["x"] = 1L << 40, ["y"] = 1 }, ct: Ct);
        AsyncResult failed = await client.SendTaskAsync("tasks.fail", ["kaput"], ct: Ct);

        Assert.Equal(42, await product.GetAsync<long>(s_wait, Ct));
        Assert.Equal((1L << 40) + 1, await keyword.GetAsync<long>(s_wait, Ct));
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => failed.GetAsync<long>(s_wait, Ct));
        Assert.Equal(("ValueError", "kaput"), (error.ExceptionType, error.RemoteMessage));
    }

    [Fact]
    public async Task PythonClient_CountdownExpiresUnknownAnd500InFlight_OnCeleriacWorker()
    {
        string output = await PythonCelery.RunAsync("""
            import sys, json, time
            from datetime import datetime, timedelta, timezone
            from celery.result import ResultSet
            from interop_tasks import add, app
            q = sys.argv[1]
            t0 = time.time()
            later = add.apply_async((1, 2), countdown=1.5, queue=q)
            expired = add.apply_async((3, 4), expires=datetime.now(timezone.utc) - timedelta(seconds=5), queue=q)
            unknown = app.send_task('tasks.nope', (1,), queue=q)
            out = {'later': later.get(timeout=30), 'delay': time.time() - t0}
            for name, r in (('expired', expired), ('unknown', unknown)):
                try:
                    r.get(timeout=30)
                except Exception as e:
                    out[name] = [r.state, type(e).__name__]
            many = [add.apply_async((i, i), queue=q) for i in range(500)]
            out['many'] = ResultSet(many).get(timeout=60) == [2 * i for i in range(500)]
            print(json.dumps(out))
            """, fx.PythonEnvironment, CeleriacQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        Assert.Equal(3, root.GetProperty("later").GetInt64());
        Assert.InRange(root.GetProperty("delay").GetDouble(), 1.5, 20);
        Assert.Equal(["REVOKED", "TaskRevokedError"], root.GetProperty("expired").EnumerateArray().Select(e => e.GetString()!));
        Assert.Equal(["FAILURE", "NotRegistered"], root.GetProperty("unknown").EnumerateArray().Select(e => e.GetString()!));
        Assert.True(root.GetProperty("many").GetBoolean());
    }

    [Fact]
    public async Task CeleriacClient_RevokeAnd500InFlight_OnPythonWorker()
    {
        CeleriacApp client = fx.Client;
        AsyncResult held = await client.SendTaskAsync("tasks.add", [2, 2], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(3) }, ct: Ct);
        await fx.Python.WaitForLogAsync($"Task tasks.add[{held.Id}] received", s_wait);
        await client.RevokeAsync([held.Id], Ct);
        var revoked = await Assert.ThrowsAsync<TaskFailedException>(() => held.GetAsync<long>(s_wait, Ct));
        Assert.Equal(TaskStates.Revoked, revoked.State);

        AsyncResult[] many = await Task.WhenAll(Enumerable.Range(0, 500).Select(i => client.SendTaskAsync("tasks.add", [i, i], ct: Ct)));
        // Two minutes, not one: a Celery 5.2 worker on RabbitMQ at times stalls until its 10 s loop tick (a CI run lost 60 s so).
        long[] values = await Task.WhenAll(many.Select(r => r.GetAsync<long>(TimeSpan.FromSeconds(120), Ct)));
        Assert.Equal(Enumerable.Range(0, 500).Select(i => 2L * i), values);
    }

    [Fact]
    public Task CeleriacClient_ValueTypes_EchoedByPythonWorker() => CeleriacToCelery.ValuesEchoedByPythonAsync(fx.Client);

    [Fact]
    public Task CeleriacClient_CountdownAndExpires_PythonWorkerWaitsAndRevokesExpired() => CeleriacToCelery.CountdownAndExpiresHonouredByCeleryAsync(fx.Client, fx.Python);

    [Fact]
    public Task CeleriacClient_UnknownTaskName_PythonWorkerStoresNotRegistered() => CeleriacToCelery.UnknownTaskStoredAsNotRegisteredAsync(fx.Client, fx.Python);

    [Fact]
    public async Task PythonClient_RevokesTaskHeldByCeleriacWorker_ReplyNamesItAndTaskEndsRevoked()
    {
        // Over the celery.pidbox fanout exchange; the reply comes back through reply.celery.pidbox.
        await CeleryToCeleriac.RevokeOfHeldTaskAsync((script, args) => fx.RunPythonAsync(script, null, args), CeleriacQueue, RabbitMqInteropFixture.CeleriacNode, fx.CeleriacLog);
    }
}
