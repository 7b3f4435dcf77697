using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Celeriac.Events;
using Celeriac.Worker;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// Events across languages on a real Redis: a Celery 5.2 worker started with <c>-E</c> is seen by Celeriac's
/// <see cref="EventReceiver"/> and <see cref="ClusterState"/> with its tasks, and Celery's own <c>celery events --dump</c>
/// prints a Celeriac worker's worker and task events.
/// </summary>
public sealed class EventsInteropTests(RedisInteropFixture fx)
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CeleryWorkerWithE_SeenByCeleriacsReceiverAndClusterState_WithItsTasks()
    {
        string queue = "events.py." + Guid.NewGuid().ToString("N")[..8];
        string node = "py-events-" + Guid.NewGuid().ToString("N")[..8] + "@localhost";
        await using CeleriacApp client = fx.NewApp(o => o.DefaultQueue = queue);
        var state = new ClusterState();
        var receiver = new EventReceiver(client);
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task reading = Task.Run(async () =>
        {
            await foreach (CeleryEvent e in receiver.ReadAsync(stopReading.Token))
            {
                state.Apply(e);
            }
        }, Ct);
        await receiver.Subscribed.WaitAsync(s_wait, Ct);

        // Prefork, as the golden captures: Celery 5.2's dispatcher is not thread-safe, and with -P threads it loses task
        // events when two tasks end together (seen here: 3 of 5 task-succeeded published), and sends the exception as
        // ExceptionWithTraceback().
        await using (CeleryCliProcess worker = await CeleryCliProcess.StartAsync(fx.PythonEnvironment, " ready.", s_wait, "worker", "-P", "prefork", "-c", "2", "-Q", queue, "-n", node, "-E", "--without-gossip", "--without-mingle", "-l", "info"))
        {
            Assert.True(await Poll(() => state.GetWorker(node)?.Alive == true), "the Celery worker never showed online\n" + worker.Output);
            AsyncResult add = await client.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
            AsyncResult fail = await client.SendTaskAsync("tasks.fail", ["boom from python"], ct: Ct);
            Assert.Equal(5, await add.GetAsync<int>(s_wait, Ct));
            await Assert.ThrowsAsync<TaskFailedException>(() => fail.GetAsync<string>(s_wait, Ct));
            Assert.True(
                await Poll(() => state.GetTask(add.Id)?.Ready == true && state.GetTask(fail.Id)?.Ready == true),
                $"the task events never came: add {Timeline(state.GetTask(add.Id))}, fail {Timeline(state.GetTask(fail.Id))}\n{worker.Output}");

            ClusterTask added = state.GetTask(add.Id)!;
            Assert.Equal((TaskStates.Success, "tasks.add", "(2, 3)", "5", node), (added.State, added.Name, added.Args, added.Result, added.Worker));
            Assert.InRange(added.Runtime!.Value, 0, 10);
            Assert.NotNull(added.Received);
            Assert.NotNull(added.Started);
            ClusterTask failed = state.GetTask(fail.Id)!;
            Assert.Equal((TaskStates.Failure, "ValueError('boom from python')"), (failed.State, failed.Exception));
            Assert.Contains("ValueError: boom from python", failed.Traceback, StringComparison.Ordinal);

            ClusterWorker celery = state.GetWorker(node)!;
            Assert.Equal(("py-celery", 2.0), (celery.SwIdent, celery.Freq));

            // Celery's worker answers the receiver's heartbeat request and beats every 2 s: more than one heartbeat.
            Assert.True(await Poll(() => state.GetWorker(node)!.LastHeartbeat > added.Succeeded), "no heartbeat after the tasks");
            await worker.TerminateAsync(s_wait);
        }

        Assert.True(await Poll(() => state.GetWorker(node)?.Alive == false), "the Celery worker's worker-offline was not seen");
        await stopReading.CancelAsync();
        await reading.WaitAsync(s_wait, Ct);
    }

    [Fact]
    public async Task CeleryEventsDump_PrintsACeleriacWorkersWorkerAndTaskEvents()
    {
        string queue = "events.net." + Guid.NewGuid().ToString("N")[..8];
        string node = "celeriac-dump-" + Guid.NewGuid().ToString("N")[..8] + "@localhost";
        await using CeleriacApp workerApp = fx.NewQuickstartApp(o =>
        {
            o.Queues.Add(queue);
            o.NodeName = node;
            o.TaskEvents = true;
        });
        await using CeleriacApp client = fx.NewApp(o => o.DefaultQueue = queue);
        using var stopWorker = new CancellationTokenSource();
        var worker = new CeleriacWorker(workerApp);
        Task run = Task.Run(() => worker.RunAsync(stopWorker.Token), Ct);
        await Task.WhenAny(worker.Ready, run).WaitAsync(s_wait, Ct);

        await using CeleryCliProcess dump = await CeleryCliProcess.StartAsync(fx.PythonEnvironment, "-> evdump: starting capture...", s_wait, "events", "--dump");

        // celery events asks every worker for a heartbeat as it starts: the Celeriac worker's answer shows it listens.
        await dump.WaitForAsync(l => l.StartsWith(node, StringComparison.Ordinal) && l.Contains("] heartbeat: ", StringComparison.Ordinal), s_wait);
        AsyncResult add = await client.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
        AsyncResult fail = await client.SendTaskAsync("tasks.fail", ["deliberate"], ct: Ct);
        Assert.Equal(5, await add.GetAsync<int>(s_wait, Ct));
        await Assert.ThrowsAsync<TaskFailedException>(() => fail.GetAsync<string>(s_wait, Ct));
        await stopWorker.CancelAsync();
        await run.WaitAsync(s_wait, Ct);

        string received = await dump.WaitForAsync(l => l.Contains($"task received: tasks.add({add.Id}) args=(2, 3) kwargs={{}}", StringComparison.Ordinal), s_wait);
        string started = await dump.WaitForAsync(l => l.Contains($"task started: tasks.add({add.Id})", StringComparison.Ordinal), s_wait);
        string succeeded = await dump.WaitForAsync(l => l.Contains($"task succeeded: tasks.add({add.Id}) args=(2, 3) kwargs={{}}", StringComparison.Ordinal), s_wait);
        string failed = await dump.WaitForAsync(l => l.Contains($"task failed: tasks.fail({fail.Id})", StringComparison.Ordinal), s_wait);
        string offline = await dump.WaitForAsync(l => l.StartsWith(node, StringComparison.Ordinal) && l.Contains("] shutdown: ", StringComparison.Ordinal), s_wait);

        Assert.All([received, started, succeeded, failed], l => Assert.StartsWith(node + " [", l, StringComparison.Ordinal));
        Assert.Contains("result=5,", succeeded, StringComparison.Ordinal);
        Assert.Contains("runtime=", succeeded, StringComparison.Ordinal);
        Assert.Contains("exception=", failed, StringComparison.Ordinal);
        Assert.Contains("deliberate", failed, StringComparison.Ordinal);
        Assert.Contains("sw_ident=celeriac", offline, StringComparison.Ordinal);
        Assert.Contains("freq=2.0", offline, StringComparison.Ordinal);
    }

    private static string Timeline(ClusterTask? task) => task is null ? "none" : task.State + " [" + string.Join(", ", task.Timeline.Select(t => t.Type)) + "]";

    private static Task<bool> Poll(Func<bool> condition) => PollAsync(condition, s_wait);

    private static async Task<bool> PollAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                return false;
            }

            await Task.Delay(50, Ct);
        }

        return true;
    }
}
