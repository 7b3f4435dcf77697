using System.Globalization;
using System.Text.Json;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// Message priority on Redis, as kombu 5.2 lays it out: priority 0–2 in list <c>q</c>, 3–5 in <c>q\x06\x163</c>,
/// 6–8 in <c>q\x06\x166</c>, 9 in <c>q\x06\x169</c>; a worker pops the lists in that order, so a lower number is
/// served first, and FIFO within a list. Each test fills its own queue while no worker consumes it, then starts a
/// worker with concurrency 1 and checks the order the tasks ran in.
/// </summary>
public sealed class PriorityInteropTests(RedisInteropFixture fx)
{
    private const string Sep = "\x06\x16";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>What is sent, in this order, with its priority (null: none given).</summary>
    private static readonly (string Value, int? Priority)[] s_sent =
    [
        ("a9", 9), ("b0", 0), ("c6", 6), ("d3", 3), ("e2", 2), ("f8", 8), ("g4", 4),
        ("h9", 9), ("i1", 1), ("j5", 5), ("k7", 7), ("l0", 0), ("m-", null),
    ];

    /// <summary>The order a kombu-compatible consumer takes them in.</summary>
    private static readonly string[] s_expectedOrder = ["b0", "e2", "i1", "l0", "m-", "d3", "g4", "j5", "c6", "f8", "k7", "a9", "h9"];

    [Fact]
    public async Task Priorities_FromPython_CeleriacWorkerRunsLowerNumbersFirst()
    {
        const string queue = "interop.prio.net";
        string spec = JsonSerializer.Serialize(s_sent.Select(s => new object?[] { s.Value, s.Priority }));
        string output = await fx.RunPythonAsync("""
            import sys, json
            from interop_tasks import echo
            from interop_client import send_with_priorities
            print(json.dumps([r.id for r in send_with_priorities(echo, sys.argv[1], json.loads(sys.argv[2]))]))
            """, queue, spec);
        string[] ids = JsonSerializer.Deserialize<string[]>(output)!;
        await AssertKombuListsAsync(queue);

        // The Celeriac worker records the order it runs tasks.echo in.
        await using CeleriacApp app = fx.NewApp(o =>
        {
            o.Queues.Add(queue);
            o.Concurrency = 1;
        });
        IReadOnlyCollection<string> order;
        await using (var worker = RecordingEchoWorker.Start(app))
        {
            foreach (string id in ids)
            {
                TaskResultMeta meta = await fx.Client.AsyncResult(id).WaitAsync(TimeSpan.FromSeconds(30), Ct);
                Assert.Equal(TaskStates.Success, meta.Status);
            }

            order = worker.Order;
        }

        Assert.Equal(s_expectedOrder, order);
    }

    [Fact]
    public async Task Priorities_FromCeleriac_CeleryWorkerRunsLowerNumbersFirst()
    {
        const string queue = "interop.prio.py";
        var sent = new List<AsyncResult>();
        foreach ((string value, int? priority) in s_sent)
        {
            sent.Add(await fx.Client.SendTaskAsync("tasks.echo", [value], options: new ApplyOptions { Queue = queue, Priority = priority }, ct: Ct));
        }

        // Celeriac wrote the same lists kombu writes.
        await AssertKombuListsAsync(queue);

        // The Celery worker's execution order: its results' date_done (one task at a time). -P solo, not threads:
        // with -P threads -c 1, Celery 5.2 / kombu 5.2.4 fetch the first message of the next priority list but
        // leave it in the hub for ~10 s (seen here: bucket 0 ran at t+0 s, the rest at t+10 s), in the same order.
        await using PythonWorker worker = await PythonWorker.StartAsync(fx.BrokerUrl, fx.BackendUrl, queue, concurrency: 1, nodeName: "py-prio@localhost", pool: "solo");
        var done = new List<(DateTimeOffset At, string Value)>();
        foreach (AsyncResult r in sent)
        {
            TaskResultMeta meta = await r.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            Assert.Equal(TaskStates.Success, meta.Status);
            done.Add((meta.DateDone!.Value, meta.ResultElement.GetString()!));
        }

        Assert.Equal(s_expectedOrder, done.OrderBy(d => d.At).Select(d => d.Value));
    }

    private async Task AssertKombuListsAsync(string queue)
    {
        Dictionary<string, int> expected = new(StringComparer.Ordinal)
        {
            [queue] = s_sent.Count(s => s.Priority is null or < 3),
            [queue + Sep + "3"] = s_sent.Count(s => s.Priority is >= 3 and < 6),
            [queue + Sep + "6"] = s_sent.Count(s => s.Priority is >= 6 and < 9),
            [queue + Sep + "9"] = s_sent.Count(s => s.Priority is 9),
        };
        foreach ((string key, int count) in expected)
        {
            string llen = (await fx.Server.CliAsync("-n", "0", "LLEN", key)).Trim();
            Assert.True(llen == count.ToString(CultureInfo.InvariantCulture), $"LLEN {key.Replace(Sep, "\\x06\\x16", StringComparison.Ordinal)} = {llen}, expected {count}");
        }
    }
}
