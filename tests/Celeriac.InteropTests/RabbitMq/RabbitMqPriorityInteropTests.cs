using System.Text.Json;

namespace Celeriac.InteropTests.RabbitMq;

/// <summary>
/// Message priority on RabbitMQ, as AMQP means it: a queue declared with <c>x-max-priority</c> (Celery's
/// <c>task_queue_max_priority</c>, Celeriac's <see cref="CeleriacOptions.QueueMaxPriority"/>) serves a higher
/// number first, FIFO within a priority, and a message without one as priority 0. Each test fills a queue of its
/// own while nothing consumes it, then starts a worker that runs one task at a time with a prefetch of one, and
/// checks the order the tasks ran in. Both sides declare the queue, so they must agree on its arguments (or the
/// second declare fails with PRECONDITION_FAILED).
/// </summary>
[Collection(RabbitMqInteropGroup.Name)]
public sealed class RabbitMqPriorityInteropTests(RabbitMqInteropFixture fx)
{
    private const int MaxPriority = 10;
    private const string MaxPriorityArguments = """[{"x-max-priority",10}]""";

    // Celery 5.2 on RabbitMQ with a prefetch of one sometimes takes its next task only on its 10 s loop tick (seen
    // here: four such pauses in one run), so a wait must cover several of them.
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(120);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>What is sent, in this order, with its priority (null: none given).</summary>
    private static readonly (string Value, int? Priority)[] s_sent =
    [
        ("a9", 9), ("b0", 0), ("c6", 6), ("d3", 3), ("e2", 2), ("f8", 8), ("g4", 4),
        ("h9", 9), ("i1", 1), ("j5", 5), ("k7", 7), ("l0", 0), ("m-", null), ("n10", 10),
    ];

    /// <summary>The order an AMQP consumer takes them in: the highest number first, FIFO within one; none counts as 0.</summary>
    private static readonly string[] s_expectedOrder = ["n10", "a9", "h9", "f8", "k7", "c6", "j5", "g4", "d3", "e2", "i1", "b0", "l0", "m-"];

    [Fact]
    public async Task Priorities_FromPythonClient_CeleriacWorkerRunsHigherNumbersFirst()
    {
        const string Queue = "rmq.prio.net";
        string spec = JsonSerializer.Serialize(s_sent.Select(s => new object?[] { s.Value, s.Priority }));

        // The Python client sends, then waits for its results on its rpc:// reply queue while the worker runs them.
        Task<string> python = fx.RunPythonAsync(
            """
            import sys, json
            from celery.result import ResultSet
            from interop_tasks import echo
            from interop_client import send_with_priorities
            results = send_with_priorities(echo, sys.argv[1], json.loads(sys.argv[2]))
            print(json.dumps(ResultSet(results).get(timeout=45)))
            """,
            new Dictionary<string, string> { ["CELERY_QUEUE_MAX_PRIORITY"] = "10" },
            Queue,
            spec);
        await fx.WaitForReadyMessagesAsync(Queue, s_sent.Length, python);
        Assert.Equal(MaxPriorityArguments, await fx.QueueArgumentsAsync(Queue));

        // A Celeriac worker with the same max priority (it declares the queue again) records the order it runs tasks.echo in.
        await using CeleriacApp app = fx.NewApp(o =>
        {
            o.Queues.Add(Queue);
            o.Concurrency = 1;
            o.PrefetchMultiplier = 1;
            o.QueueMaxPriority = MaxPriority;
        });
        string output;
        IReadOnlyCollection<string> order;
        await using (var worker = RecordingEchoWorker.Start(app))
        {
            output = await python.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            order = worker.Order;
        }

        // The Python client got every result, and the worker ran them by priority.
        Assert.Equal(s_sent.Select(s => s.Value), JsonSerializer.Deserialize<string[]>(output)!);
        Assert.Equal(s_expectedOrder, order);
        Assert.Equal(MaxPriorityArguments, await fx.QueueArgumentsAsync(Queue));
    }

    [Fact]
    public async Task Priorities_FromCeleriacClient_CeleryWorkerRunsHigherNumbersFirst()
    {
        const string Queue = "rmq.prio.py";
        await using CeleriacApp client = fx.NewApp(o => o.QueueMaxPriority = MaxPriority);
        var sent = new List<(AsyncResult Result, string Value)>();
        foreach ((string value, int? priority) in s_sent)
        {
            sent.Add((await client.SendTaskAsync("tasks.echo", [value], options: new ApplyOptions { Queue = Queue, Priority = priority }, ct: Ct), value));
        }

        await fx.WaitForReadyMessagesAsync(Queue, s_sent.Length);
        Assert.Equal(MaxPriorityArguments, await fx.QueueArgumentsAsync(Queue));

        // A Celery worker with task_queue_max_priority=10 (it declares the queue again), one task at a time, prefetch
        // one. -P solo, not threads: with -P threads -c 1 Celery 5.2 took the next message only every 10 s here (the
        // same order, but 14 tasks take over two minutes), as on Redis. Solo may still stall once for 10 s (seen with
        // a Python client sending too), which the 30 s wait per result allows.
        await using PythonWorker worker = await PythonWorker.StartAsync(
            fx.Server.Url(), "rpc://", Queue, concurrency: 1, nodeName: "py-prio@localhost", pool: "solo", prefetchMultiplier: 1, queueMaxPriority: MaxPriority);
        foreach ((AsyncResult result, string value) in sent)
        {
            TaskResultMeta meta = await WaitOrShowAsync(result, worker);
            Assert.Equal((TaskStates.Success, value), (meta.Status, meta.ResultElement.GetString()));
        }

        // The order Celery ran them in: its log, one task at a time. Celery sends a result before it logs "succeeded",
        // so the last line may still be on its way when the last result is in (a CI run read 13 of 14).
        foreach ((AsyncResult result, _) in sent)
        {
            await worker.WaitForLogAsync($"Task tasks.echo[{result.Id}] succeeded", s_wait);
        }

        string log = worker.Log;
        TestContext.Current.TestOutputHelper?.WriteLine(log);
        Dictionary<string, string> valueOf = sent.ToDictionary(s => s.Result.Id, s => s.Value, StringComparer.Ordinal);
        string[] ran = [.. log.Split('\n')
            .Select(l => l.IndexOf("Task tasks.echo[", StringComparison.Ordinal) is int at and >= 0 && l.Contains("] succeeded", StringComparison.Ordinal) ? l[(at + 16)..l.IndexOf(']', at)] : null)
            .OfType<string>()
            .Select(id => valueOf[id])];
        Assert.True(s_expectedOrder.SequenceEqual(ran), $"ran {string.Join(' ', ran)}\n{log}");
        Assert.DoesNotContain("PRECONDITION_FAILED", log, StringComparison.Ordinal);
        Assert.Equal(MaxPriorityArguments, await fx.QueueArgumentsAsync(Queue));
    }

    private static async Task<TaskResultMeta> WaitOrShowAsync(AsyncResult result, PythonWorker worker)
    {
        try
        {
            return await result.WaitAsync(s_wait, Ct);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"no result for {result.Id} within {s_wait.TotalSeconds} s; the Celery worker logged:\n{worker.Log}");
            throw;
        }
    }
}
