using System.Text.Json;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// Python Celery 5.2 sends, over a real Redis, to an in-process Celeriac worker running the Quickstart's tasks,
/// and reads what the worker stored through Celery's own Redis result backend.
/// </summary>
public sealed class PythonProducerCeleriacWorkerTests(RedisInteropFixture fx) : IAsyncLifetime
{
    private const string Queue = RedisInteropFixture.CeleriacQueue;

    public async ValueTask InitializeAsync() => await fx.EnsureCeleriacWorkerAsync();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task PositionalAndKeywordArgs_FromPython_CeleriacBindsThem()
    {
        string output = await fx.RunPythonAsync("""
            import sys
            from interop_tasks import add, app
            from interop_client import report
            q = sys.argv[1]
            report([
                add.apply_async((2, 3), queue=q),
                add.apply_async(kwargs={'x': 4, 'y': 5}, queue=q),
                add.apply_async((10,), {'y': 7}, queue=q),
                app.send_task('tasks.mul', kwargs={'y': 6, 'x': 7}, queue=q),
            ])
            """, Queue);

        IReadOnlyList<PythonOutcome> seen = PythonOutcome.ParseList(output);
        Assert.Equal(["5", "9", "17", "42"], seen.Select(o => o.ValueJson));
        Assert.All(seen, o => Assert.Equal(("SUCCESS", "int"), (o.State, o.Type)));
    }

    [Fact]
    public async Task ValueTypes_EchoedByCeleriac_PythonGetsSameValuesAndTypes()
    {
        string output = await fx.RunPythonAsync("""
            import sys, json
            from interop_tasks import echo, xsum
            from interop_client import outcome
            q = sys.argv[1]
            values = ['h\u00e9llo', 2.0, 2**64 + 1, -(2**70), [1, 'a', None, 2.5, [True, False]],
                      {'k': [1, {'n': None}], '\u00fc': 'x', 'f': 0.1}, None, '\u017c\u00f3\u0142\u0107 \u6771\u4eac \U0001F389',
                      True, 0, -7, 1e300, '']
            sent = [echo.apply_async((v,), queue=q) for v in values]
            total = xsum.apply_async(([2**64, 2**64, 1],), queue=q)
            out = []
            for v, r in zip(values, sent):
                o = outcome(r)
                o['sent'] = json.dumps(v)
                o['sent_type'] = type(v).__name__
                out.append(o)
            print(json.dumps({'echo': out, 'xsum': outcome(total)}))
            """, Queue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement[] echoes = [.. doc.RootElement.GetProperty("echo").EnumerateArray()];
        Assert.Equal(13, echoes.Length);
        foreach (JsonElement e in echoes)
        {
            PythonOutcome o = PythonOutcome.From(e);
            string sent = JsonText.Canonical(e.GetProperty("sent").GetString()!);
            Assert.True(o.State == "SUCCESS", $"echo({sent}) ended {o.State}: {o.ExcType}: {o.ExcMessage}");
            Assert.Equal(sent, o.ValueJson);
            Assert.Equal(e.GetProperty("sent_type").GetString(), o.Type);
        }

        // Celeriac's xsum adds big integers exactly (BigInteger) and Python gets an int back.
        PythonOutcome total = PythonOutcome.From(doc.RootElement.GetProperty("xsum"));
        Assert.Equal(("36893488147419103233", "int"), (total.ValueJson, total.Type));
    }

    [Fact]
    public async Task FailingTask_RunByCeleriac_PythonSeesTypeMessageAndStates()
    {
        string output = await fx.RunPythonAsync("""
            import sys, json, time
            from interop_tasks import app, fail, sleep
            from interop_client import outcome
            q = sys.argv[1]
            failed = fail.apply_async(('bad \u017c\u00f3\u0142\u0107',), queue=q)
            # send_task: apply_async would check the arguments in Python before sending.
            bad_args = app.send_task('tasks.add', ('only one',), queue=q)
            slow = sleep.apply_async((0.5,), queue=q)
            states, started_info = [], None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                s = slow.state
                if not states or states[-1] != s:
                    states.append(s)
                if s == 'STARTED' and started_info is None:
                    started_info = slow.info
                if s in ('SUCCESS', 'FAILURE'):
                    break
                time.sleep(0.02)
            o_failed = outcome(failed)
            o_failed['traceback'] = failed.traceback
            print(json.dumps({'failed': o_failed, 'bad_args': outcome(bad_args), 'slow': outcome(slow),
                              'slow_states': states, 'started_info': started_info}))
            """, Queue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        PythonOutcome failed = PythonOutcome.From(root.GetProperty("failed"));
        Assert.Equal(("FAILURE", "InvalidOperationException", "bad żółć"), (failed.State, failed.ExcType, failed.ExcMessage));
        Assert.Contains("InvalidOperationException", root.GetProperty("failed").GetProperty("traceback").GetString(), StringComparison.Ordinal);

        PythonOutcome badArgs = PythonOutcome.From(root.GetProperty("bad_args"));
        Assert.Equal(("FAILURE", "TypeError"), (badArgs.State, badArgs.ExcType));

        // task_track_started is on in the Celeriac worker: Python sees STARTED with Celery's {pid, hostname}, then SUCCESS.
        Assert.Equal("0.5", PythonOutcome.From(root.GetProperty("slow")).ValueJson);
        string[] states = [.. root.GetProperty("slow_states").EnumerateArray().Select(s => s.GetString()!)];
        Assert.Contains("STARTED", states);
        Assert.Equal("SUCCESS", states[^1]);
        JsonElement info = root.GetProperty("started_info");
        Assert.Equal(RedisInteropFixture.CeleriacNode, info.GetProperty("hostname").GetString());
        Assert.True(info.GetProperty("pid").GetInt32() > 0);
    }

    [Fact]
    public async Task CountdownAndExpires_FromPython_CeleriacWaitsAndRevokesExpired()
    {
        string output = await fx.RunPythonAsync("""
            import sys, json
            from datetime import datetime, timedelta, timezone
            from interop_tasks import add
            from interop_client import outcome
            q = sys.argv[1]
            t0 = datetime.utcnow()
            later = add.apply_async((1, 2), countdown=1.5, queue=q)
            expired = add.apply_async((3, 4), expires=datetime.now(timezone.utc) - timedelta(seconds=5), queue=q)
            fresh = add.apply_async((5, 6), expires=60, queue=q)
            o = {'later': outcome(later), 'expired': outcome(expired), 'fresh': outcome(fresh)}
            o['later_delay'] = (later.date_done - t0).total_seconds()
            print(json.dumps(o))
            """, Queue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        Assert.Equal("3", PythonOutcome.From(root.GetProperty("later")).ValueJson);
        double delay = root.GetProperty("later_delay").GetDouble();
        Assert.InRange(delay, 1.5, 15);

        PythonOutcome expired = PythonOutcome.From(root.GetProperty("expired"));
        Assert.Equal(("REVOKED", "TaskRevokedError", "expired"), (expired.State, expired.ExcType, expired.ExcMessage));
        string log = fx.CeleriacWorkerLog.Text;
        Assert.Contains($"tasks.add[{expired.Id}] expired at", log, StringComparison.Ordinal);
        Assert.DoesNotContain($"tasks.add[{expired.Id}] succeeded", log, StringComparison.Ordinal);
        Assert.Equal("11", PythonOutcome.From(root.GetProperty("fresh")).ValueJson);
    }

    [Fact]
    public async Task UnknownTaskName_FromPython_CeleriacStoresNotRegisteredAndGoesOn()
    {
        string name = "tasks.unknown_" + Guid.NewGuid().ToString("N")[..8];
        string output = await fx.RunPythonAsync("""
            import sys
            from interop_tasks import add, app
            from interop_client import report
            q, name = sys.argv[1], sys.argv[2]
            report([app.send_task(name, (1,), queue=q), add.apply_async((20, 22), queue=q)])
            """, Queue, name);

        IReadOnlyList<PythonOutcome> seen = PythonOutcome.ParseList(output);
        Assert.Equal(("FAILURE", "NotRegistered"), (seen[0].State, seen[0].ExcType));
        Assert.Equal(("SUCCESS", "42"), (seen[1].State, seen[1].ValueJson));
        Assert.Contains($"Received unregistered task of type '{name}'", fx.CeleriacWorkerLog.Text, StringComparison.Ordinal);

        // Celery stores exc_message ["<name>"] (NotRegistered's args): Python's str(e) is then '<name>' (a KeyError quotes it).
        Assert.Equal($"'{name}'", seen[0].ExcMessage);
    }

    [Fact]
    public async Task FiveHundredTasksInFlight_FromPython_AllResultsCorrect()
    {
        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery.result import ResultSet
            from interop_tasks import add
            q = sys.argv[1]
            results = [add.apply_async((i, i), queue=q) for i in range(500)]
            print(json.dumps(ResultSet(results).get(timeout=60)))
            """, Queue);

        using JsonDocument doc = JsonDocument.Parse(output);
        long[] values = [.. doc.RootElement.EnumerateArray().Select(v => v.GetInt64())];
        Assert.Equal(Enumerable.Range(0, 500).Select(i => 2L * i), values);
    }

    [Fact]
    public async Task RevokeFromPython_OfTaskHeldByCeleriac_EndsRevoked()
    {
        // Celery's revoke is a remote-control broadcast (kombu fanout on the Redis channel '/0.celery.pidbox'):
        // the Celeriac worker answers it like a Celery worker and keeps the id in its revoked set.
        string id = await CeleryToCeleriac.RevokeOfHeldTaskAsync(fx.RunPythonAsync, Queue, RedisInteropFixture.CeleriacNode, fx.CeleriacWorkerLog);

        // Celeriac reads the same outcome from Celery's Redis backend.
        TaskResultMeta meta = await fx.Client.AsyncResult(id).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal((TaskStates.Revoked, "TaskRevokedError", "revoked"), (meta.Status, meta.Exception?.Type, meta.Exception?.Message));
    }

    [Fact]
    public async Task RevokeWithTerminateFromPython_OfRunningTask_EndsRevokedTerminated()
    {
        // The Celeriac worker's tasks.sleep honours its cancellation token, as a Celery task dies with its process.
        string output = await fx.RunPythonAsync("""
            import sys, json, time
            from interop_tasks import app
            q, node = sys.argv[1], sys.argv[2]
            r = app.send_task('tasks.sleep', (30,), queue=q)
            deadline = time.time() + 15
            while r.state != 'STARTED' and time.time() < deadline:
                time.sleep(0.05)
            started = r.state
            replies = app.control.revoke(r.id, terminate=True, reply=True, timeout=5, limit=1, destination=[node])
            begun = time.time()
            try:
                r.get(timeout=10)
                outcome = 'no error'
            except Exception as e:
                outcome = type(e).__name__ + ': ' + str(e)
            print(json.dumps({'id': r.id, 'started': started, 'replies': replies, 'state': r.state, 'outcome': outcome, 'seconds': time.time() - begun}))
            """, Queue, RedisInteropFixture.CeleriacNode);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        string id = root.GetProperty("id").GetString()!;
        Assert.Equal("STARTED", root.GetProperty("started").GetString());
        JsonElement reply = Assert.Single(root.GetProperty("replies").EnumerateArray().ToList());
        Assert.Equal($"terminate: {id}", reply.GetProperty(RedisInteropFixture.CeleriacNode).GetProperty("ok").GetString());
        Assert.Equal("REVOKED", root.GetProperty("state").GetString());
        Assert.Equal("TaskRevokedError: terminated", root.GetProperty("outcome").GetString());
        Assert.True(root.GetProperty("seconds").GetDouble() < 5, $"terminate took {root.GetProperty("seconds").GetDouble()} s");
        Assert.Contains($"Task tasks.sleep[{id}] terminated", fx.CeleriacWorkerLog.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProgressFromCeleriacTask_ReadByPythonClientWhileItRuns()
    {
        string output = await fx.RunPythonAsync("""
            import sys, json, time
            from interop_tasks import app
            q = sys.argv[1]
            r = app.send_task('tasks.progress', (5,), queue=q)
            seen = []
            deadline = time.time() + 20
            while not r.ready() and time.time() < deadline:
                # One read of the stored document: state and info from two reads may straddle the task's end.
                meta = r.backend.get_task_meta(r.id)
                if meta['status'] == 'PROGRESS':
                    info = meta['result']
                    if info not in seen:
                        seen.append(info)
                time.sleep(0.05)
            print(json.dumps({'seen': seen, 'result': r.get(timeout=10)}))
            """, Queue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement[] seen = [.. doc.RootElement.GetProperty("seen").EnumerateArray()];
        Assert.True(seen.Length >= 3, $"Python saw {seen.Length} PROGRESS states: {output}");
        Assert.All(seen, s => Assert.Equal(5, s.GetProperty("total").GetInt64()));
        long[] steps = [.. seen.Select(s => s.GetProperty("current").GetInt64())];
        Assert.Equal(steps.Order(), steps);
        Assert.Equal(5, doc.RootElement.GetProperty("result").GetInt64());
    }
}
