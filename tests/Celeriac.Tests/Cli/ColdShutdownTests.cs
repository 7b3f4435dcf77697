using Celeriac.Transport;
using Celeriac.Worker;

namespace Celeriac.Tests.Cli;

/// <summary>What the CLI's second Ctrl+C relies on: a cold shutdown gives late-acked running work back.</summary>
public sealed class ColdShutdownTests
{
    [Fact]
    public async Task RunAsync_AbortWhileLateAckedTaskRuns_MessageReturnsToQueue()
    {
        string broker = CliRun.NewBroker();
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker, Concurrency = 1, AcksLate = true });
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task("tasks.sleep", async (double seconds, CancellationToken ct) =>
        {
            started.TrySetResult();
            await Task.Delay(TimeSpan.FromSeconds(seconds), ct);
            return seconds;
        });
        using var stop = new CancellationTokenSource();
        using var abort = new CancellationTokenSource();
        var worker = new CeleriacWorker(app);
        Task run = worker.RunAsync(stop.Token, abort.Token);
        await app.SendTaskAsync("tasks.sleep", [30.0], ct: TestContext.Current.CancellationToken);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        await stop.CancelAsync();
        await abort.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        await using var other = new MemoryTransport(new Uri(broker));
        Assert.Equal(1, await other.GetQueueLengthAsync("celery", TestContext.Current.CancellationToken));
    }
}
