using System.Text.Json;
using Celeriac.Worker;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// A Python Celery 5.2 client's time limits and rate-limit commands, on Celeriac workers running the Quickstart's tasks.
/// What Python sees is what it sees from a Celery prefork worker (checked on Celery 5.2.6: a soft limit stores
/// <c>{"exc_type": "SoftTimeLimitExceeded", "exc_message": [], "exc_module": "billiard.exceptions"}</c>, a hard one
/// <c>{"exc_type": "TimeLimitExceeded", "exc_message": [1], ...}</c>).
/// </summary>
public sealed class LimitsInteropTests(RedisInteropFixture fx)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TimeLimitsFromPython_SleepOnCeleriac_PythonSeesCelerysExceptions()
    {
        await fx.EnsureCeleriacWorkerAsync();
        string output = await fx.RunPythonAsync("""
            import sys, json, time
            from interop_tasks import sleep
            from interop_client import outcome
            q = sys.argv[1]
            t0 = time.monotonic()
            soft = sleep.apply_async((10,), soft_time_limit=1, queue=q)
            hard = sleep.apply_async((10,), time_limit=1, queue=q)
            o = {'soft': outcome(soft), 'hard': outcome(hard)}
            o['seconds'] = time.monotonic() - t0
            print(json.dumps(o))
            """, RedisInteropFixture.CeleriacQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        PythonOutcome soft = PythonOutcome.From(root.GetProperty("soft"));
        PythonOutcome hard = PythonOutcome.From(root.GetProperty("hard"));
        Assert.Equal(("FAILURE", "SoftTimeLimitExceeded", "SoftTimeLimitExceeded()"), (soft.State, soft.ExcType, soft.ExcMessage));
        Assert.Equal(("FAILURE", "TimeLimitExceeded", "TimeLimitExceeded(1,)"), (hard.State, hard.ExcType, hard.ExcMessage));
        Assert.Equal("billiard.exceptions", root.GetProperty("soft").GetProperty("exc_module").GetString());
        Assert.Equal("billiard.exceptions", root.GetProperty("hard").GetProperty("exc_module").GetString());
        Assert.InRange(root.GetProperty("seconds").GetDouble(), 0.9, 8);

        string log = fx.CeleriacWorkerLog.Text;
        Assert.Contains($"Soft time limit (1s) exceeded for tasks.sleep[{soft.Id}]", log, StringComparison.Ordinal);
        Assert.Contains($"Hard time limit (1s) exceeded for tasks.sleep[{hard.Id}]", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RateAndTimeLimitCommandsFromPython_ToCeleriac_CelerysRepliesAndTheyTakeEffect()
    {
        // A worker of its own: the shared one must keep running tasks.add at full speed for the other tests.
        const string Queue = "interop.limits";
        const string Node = "celeriac-limits@localhost";
        CeleriacApp app = fx.NewQuickstartApp(o =>
        {
            o.Queues.Add(Queue);
            o.NodeName = Node;
        });
        await using (app)
        {
            using var stop = new CancellationTokenSource();
            var worker = new CeleriacWorker(app);
            Task run = Task.Run(() => worker.RunAsync(stop.Token), Ct);
            await Task.WhenAny(worker.Ready, run).WaitAsync(TimeSpan.FromSeconds(30), Ct);

            string output = await fx.RunPythonAsync("""
                import sys, json, time
                from interop_tasks import app, add, sleep
                from interop_client import outcome
                q, node, py_node = sys.argv[1], sys.argv[2], sys.argv[3]
                def rate_limit(task, rate, dest):
                    return app.control.rate_limit(task, rate, reply=True, timeout=5, limit=1, destination=[dest])
                o = {
                    'set': rate_limit('tasks.add', '1/m', node),
                    'bad': rate_limit('tasks.add', 'abc/s', node),
                    'bad_py': rate_limit('tasks.add', 'abc/s', py_node),
                    'unknown': rate_limit('tasks.nope', '5/s', node),
                    'unknown_py': rate_limit('tasks.nope', '5/s', py_node),
                }
                sent = [add.apply_async((i, i), queue=q) for i in range(3)]
                time.sleep(2)
                o['states_while_limited'] = sorted(r.state for r in sent)
                o['off'] = rate_limit('tasks.add', None, node)
                o['results'] = [r.get(timeout=20) for r in sent]
                o['time_limit'] = app.control.time_limit('tasks.sleep', soft=0.5, reply=True, timeout=5, limit=1, destination=[node])
                o['sleep'] = outcome(sleep.apply_async((10,), queue=q))
                print(json.dumps(o))
                """, Queue, Node, RedisInteropFixture.PythonNode);

            await stop.CancelAsync();
            await run.WaitAsync(TimeSpan.FromSeconds(15), Ct);

            using JsonDocument doc = JsonDocument.Parse(output);
            JsonElement root = doc.RootElement;
            Assert.Equal("new rate limit set successfully", Reply(root, "set", Node).GetProperty("ok").GetString());

            // Refusals read as a Celery worker's do.
            Assert.Equal(Reply(root, "bad_py", RedisInteropFixture.PythonNode).GetRawText(), Reply(root, "bad", Node).GetRawText());
            Assert.Equal(Reply(root, "unknown_py", RedisInteropFixture.PythonNode).GetRawText(), Reply(root, "unknown", Node).GetRawText());
            Assert.Equal("unknown task", Reply(root, "unknown", Node).GetProperty("error").GetString());

            // One token at 1/m: one task ran, two waited until the limit was lifted.
            Assert.Equal(["PENDING", "PENDING", "SUCCESS"], root.GetProperty("states_while_limited").EnumerateArray().Select(s => s.GetString()));
            Assert.Equal("rate limit disabled successfully", Reply(root, "off", Node).GetProperty("ok").GetString());
            Assert.Equal([0, 2, 4], root.GetProperty("results").EnumerateArray().Select(v => v.GetInt32()));

            // time_limit sets the task's limits on the worker; Python's own message carries none, so they apply.
            Assert.Equal("time limits set successfully", Reply(root, "time_limit", Node).GetProperty("ok").GetString());
            PythonOutcome sleep = PythonOutcome.From(root.GetProperty("sleep"));
            Assert.Equal(("FAILURE", "SoftTimeLimitExceeded"), (sleep.State, sleep.ExcType));
        }
    }

    /// <summary>The one reply <c>[{node: {...}}]</c> of a command.</summary>
    private static JsonElement Reply(JsonElement root, string name, string node) =>
        Assert.Single(root.GetProperty(name).EnumerateArray().ToList()).GetProperty(node);
}
