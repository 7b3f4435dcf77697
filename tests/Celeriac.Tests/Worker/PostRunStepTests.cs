using System.Collections.Concurrent;
using Celeriac.Concurrency;
using Celeriac.Tests.Support;
using Celeriac.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Celeriac.Tests.Worker;

/// <summary>A post-run step is one class: it sees each task's outcome after the result is stored, before the ack.</summary>
public sealed class PostRunStepTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Step_SeesEveryOutcomeAfterTheResultIsStored_InOrder()
    {
        CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.AcksLate = true;
            o.Concurrency = 1; // one task after the other, so the order of what the steps see is known
        });
        app.Task("t.ok", (int x) => x * 2);
        app.Task("t.fail", int () => throw new InvalidOperationException("no"));
        app.Task("t.reject", int () => throw new RejectException("not mine", requeue: false));
        var seen = new ConcurrentQueue<(string Step, string Name, TaskOutcomeKind Kind, Settlement Settlement, string StoredState)>();
        var late = new RecordingStep("late", 100, app, seen);
        var early = new RecordingStep("early", 50, app, seen);
        var worker = new CeleriacWorker(app, [late, early]);
        using var stop = new CancellationTokenSource();
        Task run = worker.RunAsync(stop.Token, Ct);
        await worker.Ready.WaitAsync(s_wait, Ct);

        AsyncResult ok = await app.SendTaskAsync("t.ok", [21], ct: Ct);
        Assert.Equal(42, await ok.GetAsync<int>(s_wait, Ct));
        await app.SendTaskAsync("t.fail", ct: Ct);
        await app.SendTaskAsync("t.reject", ct: Ct);
        Assert.True(await Poll.UntilAsync(() => seen.Count == 6, s_wait), $"{seen.Count} seen");
        await stop.CancelAsync();
        await run.WaitAsync(s_wait, Ct);

        Assert.Equal(
            [
                ("early", "t.ok", TaskOutcomeKind.Succeeded, Settlement.Ack, TaskStates.Success),
                ("late", "t.ok", TaskOutcomeKind.Succeeded, Settlement.Ack, TaskStates.Success),
                ("early", "t.fail", TaskOutcomeKind.Failed, Settlement.Ack, TaskStates.Failure),
                ("late", "t.fail", TaskOutcomeKind.Failed, Settlement.Ack, TaskStates.Failure),
                ("early", "t.reject", TaskOutcomeKind.Rejected, Settlement.Reject, TaskStates.Pending),
                ("late", "t.reject", TaskOutcomeKind.Rejected, Settlement.Reject, TaskStates.Pending),
            ],
            seen.ToArray());
        await app.DisposeAsync();
    }

    [Fact]
    public async Task Step_RegisteredInDi_RunsInTheHostedWorker()
    {
        var seen = new ConcurrentQueue<(string, string, TaskOutcomeKind, Settlement, string)>();
        var services = new ServiceCollection();
        services.AddCeleriac(o => o.BrokerUrl = "memory://" + Guid.NewGuid().ToString("N")).AddWorker();
        services.AddSingleton<IPostRunStep>(sp => new RecordingStep("di", 0, sp.GetRequiredService<CeleriacApp>(), seen));
        await using ServiceProvider provider = services.BuildServiceProvider();
        CeleriacApp app = provider.GetRequiredService<CeleriacApp>();
        app.Task("t.ok", (int x) => x + 1);
        IHostedService worker = provider.GetServices<IHostedService>().Single();
        await worker.StartAsync(Ct);

        AsyncResult ok = await app.SendTaskAsync("t.ok", [1], ct: Ct);
        Assert.Equal(2, await ok.GetAsync<int>(s_wait, Ct));
        Assert.True(await Poll.UntilAsync(() => !seen.IsEmpty, s_wait));
        await worker.StopAsync(Ct);

        Assert.Equal(("di", "t.ok", TaskOutcomeKind.Succeeded), (seen.Single().Item1, seen.Single().Item2, seen.Single().Item3));
    }

    private sealed class RecordingStep(string name, int order, CeleriacApp app, ConcurrentQueue<(string, string, TaskOutcomeKind, Settlement, string)> seen) : IPostRunStep
    {
        public int Order => order;

        public async ValueTask AfterRunAsync(FinishedTask task, CancellationToken ct)
        {
            string state = await app.AsyncResult(task.Id).GetStateAsync(ct);
            seen.Enqueue((name, task.Name, task.Outcome.Kind, task.Settlement, state));
        }
    }
}
