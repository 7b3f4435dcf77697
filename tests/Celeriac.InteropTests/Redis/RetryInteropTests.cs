using System.Text.Json;
using Celeriac.Worker;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// Retries across languages over a real Redis: Python calls Celeriac's <c>tasks.flaky</c>, Celeriac calls Python's,
/// and <c>tasks.handoff</c> (in both languages: the first run retries onto another worker's queue) is retried by one
/// worker and finished by the other, each seeing the <c>retries</c> count the other sent.
/// </summary>
public sealed class RetryInteropTests(RedisInteropFixture fx) : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    /// <summary>The queue of this class's own Celeriac worker, which has <c>tasks.handoff</c>.</summary>
    private readonly string _handoffQueue = "interop.handoff." + Guid.NewGuid().ToString("N")[..8];
    private readonly CancellationTokenSource _stop = new();
    private CeleriacApp? _app;
    private Task? _run;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string HandoffNode = "celeriac-handoff@localhost";

    /// <summary>
    /// Python prints the states it saw while polling (every 20 ms), then the outcome: <c>{"states": [...], "outcome": {...}}</c>.
    /// </summary>
    private const string PollStates = """
        import json, time
        from interop_client import outcome

        def watch(result, timeout=30):
            states, deadline = [], time.monotonic() + timeout
            while time.monotonic() < deadline:
                s = result.state
                if not states or states[-1] != s:
                    states.append(s)
                if s in ('SUCCESS', 'FAILURE'):
                    break
                time.sleep(0.02)
            return {'states': states, 'outcome': outcome(result)}
        """;

    public async ValueTask InitializeAsync()
    {
        await fx.EnsureCeleriacWorkerAsync();
        _app = fx.NewApp(o =>
        {
            o.Queues.Add(_handoffQueue);
            o.NodeName = HandoffNode;
        });
        _app.Task("tasks.handoff", async (string queue, TaskContext context) => context.Retries == 0
            ? throw await context.RetryAsync(new InvalidOperationException($"handing off to {queue}"), countdown: TimeSpan.FromSeconds(0.5), queue: queue)
            : new Dictionary<string, object?> { ["retries"] = context.Retries, ["hostname"] = context.Hostname });
        var worker = new CeleriacWorker(_app);
        _run = Task.Run(() => worker.RunAsync(_stop.Token));
        await Task.WhenAny(worker.Ready, _run).WaitAsync(s_wait);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_run is not null)
        {
            await _run.WaitAsync(TimeSpan.FromSeconds(15));
        }

        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        _stop.Dispose();
    }

    [Fact]
    public async Task PythonClient_CeleriacFlaky_RetriesOnTheCeleriacWorkerAndReturnsThirdAttempt()
    {
        string output = await fx.RunPythonAsync(PollStates + """

            import sys
            from interop_tasks import flaky
            q = sys.argv[1]
            two, six = flaky.apply_async((2,), queue=q), flaky.apply_async((6,), queue=q)
            print(json.dumps({'two': watch(two), 'six': watch(six)}))
            """, RedisInteropFixture.CeleriacQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        (string[] states, PythonOutcome two) = Read(doc.RootElement.GetProperty("two"));
        Assert.Equal(("SUCCESS", "3", "int"), (two.State, two.ValueJson, two.Type));
        AssertRetryThenSuccess(states);
        Assert.Contains($"Task tasks.flaky[{two.Id}] retry: Retry in 0.2s: FlakyException('attempt 1 of 2 planned failures')", fx.CeleriacWorkerLog.Text, StringComparison.Ordinal);

        PythonOutcome six = PythonOutcome.From(doc.RootElement.GetProperty("six").GetProperty("outcome"));
        Assert.Equal(("FAILURE", "FlakyException", "attempt 6 of 6 planned failures"), (six.State, six.ExcType, six.ExcMessage));
    }

    [Fact]
    public async Task CeleriacClient_PythonFlaky_SameMeaning_ThirdAttemptAfterRetryStates()
    {
        AsyncResult result = await fx.Client.SendTaskAsync("tasks.flaky", [2], ct: Ct);

        string? seen = null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (seen != TaskStates.Retry && !result.Ready && clock.Elapsed < s_wait)
        {
            seen = await result.GetStateAsync(Ct);
            await Task.Delay(10, Ct);
        }

        Assert.Equal(3, await result.GetAsync<long>(s_wait, Ct));
        Assert.Equal(TaskStates.Retry, seen);
    }

    [Fact]
    public async Task RetriedByPython_FinishedByCeleriac_SeesRetriesOne()
    {
        PythonOutcome outcome = await HandoffAsync(RedisInteropFixture.PythonQueue, _handoffQueue, HandoffNode);

        Assert.Contains($"Task tasks.handoff[{outcome.Id}] retry: Retry in 0.5s: HandoffError('handing off to {_handoffQueue}')", fx.PythonWorker.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RetriedByCeleriac_FinishedByPython_SeesRetriesOne()
    {
        PythonOutcome outcome = await HandoffAsync(_handoffQueue, RedisInteropFixture.PythonQueue, RedisInteropFixture.PythonNode);

        await fx.PythonWorker.WaitForLogAsync($"Task tasks.handoff[{outcome.Id}] succeeded", TimeSpan.FromSeconds(10));
    }

    /// <summary>
    /// A Python client sends <c>tasks.handoff</c> to <paramref name="firstQueue"/>, whose worker retries it onto
    /// <paramref name="nextQueue"/>: the client sees RETRY, then SUCCESS from <paramref name="finisher"/> with retries = 1.
    /// </summary>
    private async Task<PythonOutcome> HandoffAsync(string firstQueue, string nextQueue, string finisher)
    {
        string output = await fx.RunPythonAsync(PollStates + """

            import sys
            from interop_tasks import handoff
            first, then = sys.argv[1], sys.argv[2]
            print(json.dumps(watch(handoff.apply_async((then,), queue=first))))
            """, firstQueue, nextQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        (string[] states, PythonOutcome outcome) = Read(doc.RootElement);
        Assert.Equal("SUCCESS", outcome.State);
        Assert.Equal(1, outcome.Value!.Value.GetProperty("retries").GetInt32());
        Assert.Equal(finisher, outcome.Value.Value.GetProperty("hostname").GetString());
        AssertRetryThenSuccess(states);
        return outcome;
    }

    private static (string[] States, PythonOutcome Outcome) Read(JsonElement watched) =>
        ([.. watched.GetProperty("states").EnumerateArray().Select(s => s.GetString()!)], PythonOutcome.From(watched.GetProperty("outcome")));

    /// <summary>The client saw RETRY while the retry waited, and SUCCESS last.</summary>
    private static void AssertRetryThenSuccess(string[] states)
    {
        Assert.Contains(TaskStates.Retry, states);
        Assert.Equal(TaskStates.Success, states[^1]);
        Assert.True(Array.IndexOf(states, TaskStates.Retry) < states.Length - 1, "RETRY before SUCCESS: " + string.Join(", ", states));
    }
}
