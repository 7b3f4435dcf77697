using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Celeriac.IntegrationTests.Support;

namespace Celeriac.IntegrationTests.Prefork;

/// <summary>
/// A real worker process of the Quickstart with <c>-P prefork -c 2</c>: its tasks run in child processes, so a task
/// that crashes its process or passes its hard time limit costs one child, never the worker. Each store subclasses it.
/// </summary>
public abstract partial class PreforkPoolTests : IAsyncLifetime
{
    private const int Children = 2;

    protected string Dir { get; } = Directory.CreateTempSubdirectory("celeriac-prefork-").FullName;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The CELERIAC_* settings of the worker.</summary>
    protected abstract Dictionary<string, string> Env();

    /// <summary>A client app on the same store.</summary>
    protected abstract CeleriacApp Client();

    /// <summary>Sends <c>tasks.block(30)</c> with a hard time limit of 2 s and returns its id.</summary>
    protected abstract Task<string> SendBlockWithTimeLimitAsync(CeleriacApp client);

    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public virtual ValueTask DisposeAsync()
    {
        Directory.Delete(Dir, recursive: true);
        return ValueTask.CompletedTask;
    }

    private Task<ChildProcess> StartWorkerAsync(params string[] extra) =>
        StartWorkerAsync(Children, ["-c", Children.ToString(System.Globalization.CultureInfo.InvariantCulture), .. extra], null);

    private async Task<ChildProcess> StartWorkerAsync(int children, string[] extra, Dictionary<string, string>? env)
    {
        Dictionary<string, string> settings = Env();
        foreach ((string key, string value) in env ?? [])
        {
            settings[key] = value;
        }

        ChildProcess worker = ChildProcess.Start(Dir, settings, ["worker", "-P", "prefork", "-l", "info", .. extra]);
        try
        {
            await worker.Ready.WaitAsync(TimeSpan.FromSeconds(90), Ct);
        }
        catch (TimeoutException)
        {
            await worker.DisposeAsync();
            Assert.Fail($"worker not ready\n{worker.Stdout}\n{worker.Stderr}");
        }

        // The ready line comes after the pool's children said they were ready.
        Assert.Equal(children, ProcessTree.ChildrenOf(worker.Id).Count);
        return worker;
    }

    private static async Task AssertChildrenAsync(ChildProcess worker, int expected)
    {
        bool settled = await ProcessTree.WaitUntilAsync(() => ProcessTree.ChildrenOf(worker.Id).Count == expected, TimeSpan.FromSeconds(60));
        Assert.True(settled, $"the worker has {ProcessTree.ChildrenOf(worker.Id).Count} children, not {expected}\n{Tail(worker.Stderr)}");
        Assert.False(worker.HasExited, "the worker exited\n" + Tail(worker.Stderr));
    }

    private static string Tail(string text) => string.Join('\n', text.Split('\n').TakeLast(40));

    [Fact]
    public async Task Prefork_1000AddsAnd20Crashes_AddsSucceedCrashesAreWorkerLostAndTheWorkerKeepsTwoChildren()
    {
        await using ChildProcess worker = await StartWorkerAsync();
        await using CeleriacApp client = Client();
        CeleriacTask add = client.Signature("tasks.add");
        CeleriacTask crash = client.Signature("tasks.crash");
        List<(AsyncResult Result, long Expected)> adds = [];
        List<AsyncResult> crashes = [];
        for (int i = 0; i < 1000; i++)
        {
            adds.Add((await add.DelayAsync(i, 1000), i + 1000L));
            if (i % 50 == 25)
            {
                crashes.Add(await crash.DelayAsync());
            }
        }

        Assert.Equal(20, crashes.Count);
        using var all = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        all.CancelAfter(TimeSpan.FromSeconds(240));
        foreach ((AsyncResult result, long expected) in adds)
        {
            Assert.Equal(expected, await result.GetAsync<long>(null, all.Token));
        }

        foreach (AsyncResult result in crashes)
        {
            TaskResultMeta meta = await result.WaitAsync(null, all.Token);
            Assert.Equal(TaskStates.Failure, meta.Status);
            Assert.Equal("WorkerLostError", meta.Exception?.Type);
            Assert.Matches(@"^Worker exited prematurely: signal 6 \(SIGABRT\)\.$", meta.Exception?.Message);
        }

        await AssertChildrenAsync(worker, Children);
    }

    [Fact]
    public async Task Prefork_BlockPastItsHardTimeLimit_TimeLimitExceededWithin4sAndItsChildIsKilledAndReplaced()
    {
        await using ChildProcess worker = await StartWorkerAsync();
        IReadOnlyList<int> before = ProcessTree.ChildrenOf(worker.Id);
        await using CeleriacApp client = Client();

        string id = await SendBlockWithTimeLimitAsync(client);
        long sent = Stopwatch.GetTimestamp();
        TaskResultMeta meta = await new AsyncResult(id, client.ResultBackend).WaitAsync(TimeSpan.FromSeconds(4), Ct);
        TimeSpan took = Stopwatch.GetElapsedTime(sent);

        Assert.Equal(TaskStates.Failure, meta.Status);
        Assert.Equal(("TimeLimitExceeded", "billiard.exceptions"), (meta.Exception?.Type, meta.Exception?.Module));
        Assert.True(took < TimeSpan.FromSeconds(4), $"took {took}");

        Match killed = KilledAtHardLimit().Match(worker.Stderr);
        Assert.True(killed.Success, Tail(worker.Stderr));
        int pid = int.Parse(killed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains(pid, before);
        Assert.True(await ProcessTree.WaitUntilAsync(() => !ProcessTree.Exists(pid), TimeSpan.FromSeconds(5)), $"child {pid} still runs");
        await AssertChildrenAsync(worker, Children);
        Assert.DoesNotContain(pid, ProcessTree.ChildrenOf(worker.Id));
    }

    [Fact]
    public async Task Prefork_MaxTasksPerChild10_100Pids_AtLeast10ChildrenRanThemAndNotTheWorker()
    {
        await using ChildProcess worker = await StartWorkerAsync("--max-tasks-per-child", "10");
        await using CeleriacApp client = Client();
        CeleriacTask pidTask = client.Signature("tasks.pid");
        AsyncResult[] results = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => pidTask.DelayAsync()));
        using var all = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        all.CancelAfter(TimeSpan.FromSeconds(180));
        List<int> pids = [];
        foreach (AsyncResult result in results)
        {
            pids.Add(await result.GetAsync<int>(null, all.Token));
        }

        HashSet<int> distinct = [.. pids];
        Assert.True(distinct.Count >= 10, $"{distinct.Count} distinct pids: {string.Join(' ', distinct)}");
        Assert.DoesNotContain(worker.Id, distinct);

        // No child ran more than its 10.
        Assert.All(pids.GroupBy(p => p), g => Assert.True(g.Count() <= 10, $"child {g.Key} ran {g.Count()} tasks"));
        await AssertChildrenAsync(worker, Children);
    }

    [Fact]
    public async Task Prefork_RetriesAndStateUpdatesFromAChild_ReachTheStore()
    {
        await using ChildProcess worker = await StartWorkerAsync();
        await using CeleriacApp client = Client();

        AsyncResult flaky = await client.Signature("tasks.flaky").DelayAsync(2);
        AsyncResult progress = await client.Signature("tasks.progress").DelayAsync(3);

        Assert.Equal(3, await flaky.GetAsync<long>(TimeSpan.FromSeconds(60), Ct));
        Assert.Equal(3, await progress.GetAsync<long>(TimeSpan.FromSeconds(60), Ct));
        // The result is stored before the worker's console logger writes the outcome's line; the success line comes
        // after both retry lines in the one log queue, so once it is there the retries are too.
        string succeeded = $"tasks.flaky[{flaky.Id}] succeeded";
        Assert.True(
            await ProcessTree.WaitUntilAsync(() => worker.Stderr.Contains(succeeded, StringComparison.Ordinal), TimeSpan.FromSeconds(15)),
            $"no '{succeeded}' line\n{Tail(worker.Stderr)}");
        Assert.Equal(2, Regex.Count(worker.Stderr, @"tasks\.flaky\[[^\]]+\] retry: Retry in"));
    }

    [Fact]
    public async Task Prefork_RevokeWithTerminate_RunningTaskIsRevokedAndItsChildReplaced()
    {
        await using ChildProcess worker = await StartWorkerAsync();
        IReadOnlyList<int> before = ProcessTree.ChildrenOf(worker.Id);
        await using CeleriacApp client = Client();

        // tasks.progress stores PROGRESS from inside the child at each step: once read, the task runs there.
        AsyncResult running = await client.Signature("tasks.progress").DelayAsync(300);
        string state = TaskStates.Pending;
        for (var clock = Stopwatch.StartNew(); state != "PROGRESS" && clock.Elapsed < TimeSpan.FromSeconds(30);)
        {
            await Task.Delay(50, Ct);
            state = await running.GetStateAsync(Ct);
        }

        Assert.True(state == "PROGRESS", $"state {state}\n{Tail(worker.Stderr)}");
        await client.RevokeAsync([running.Id], terminate: true, Ct);

        TaskResultMeta meta = await running.WaitAsync(TimeSpan.FromSeconds(15), Ct);
        Assert.Equal(TaskStates.Revoked, meta.Status);
        Assert.Equal(("TaskRevokedError", "terminated"), (meta.Exception?.Type, meta.Exception?.Message));
        await AssertChildrenAsync(worker, Children);
        Assert.True(
            await ProcessTree.WaitUntilAsync(() => ProcessTree.ChildrenOf(worker.Id).Count(before.Contains) == Children - 1, TimeSpan.FromSeconds(15)),
            $"children before {string.Join(' ', before)}, now {string.Join(' ', ProcessTree.ChildrenOf(worker.Id))}");

        // The worker goes on with its new child.
        Assert.Equal(5, await (await client.Signature("tasks.add").DelayAsync(2, 3)).GetAsync<long>(TimeSpan.FromSeconds(30), Ct));
    }

    [Fact]
    public async Task Prefork_Autoscale_GrowsChildrenUnderABacklog_ShrinksBackWhenIdle()
    {
        await using ChildProcess worker = await StartWorkerAsync(1, ["--autoscale", "4,1"], new() { ["CELERIAC_AUTOSCALE_KEEPALIVE"] = "2" });
        await using CeleriacApp client = Client();
        CeleriacTask block = client.Signature("tasks.block");
        AsyncResult[] blocks = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => block.DelayAsync(2)));

        Assert.True(await ProcessTree.WaitUntilAsync(() => ProcessTree.ChildrenOf(worker.Id).Count == 4, TimeSpan.FromSeconds(30)), $"{ProcessTree.ChildrenOf(worker.Id).Count} children\n{Tail(worker.Stderr)}");
        foreach (AsyncResult r in blocks)
        {
            Assert.Equal(2, await r.GetAsync<long>(TimeSpan.FromSeconds(60), Ct));
        }

        await AssertChildrenAsync(worker, 1);
    }

    [GeneratedRegex(@"Pool child (\d+) killed: hard time limit")]
    private static partial Regex KilledAtHardLimit();
}
