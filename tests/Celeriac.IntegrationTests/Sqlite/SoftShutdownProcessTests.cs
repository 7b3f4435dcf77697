using System.Diagnostics;
using System.Text.RegularExpressions;
using Celeriac.IntegrationTests.Support;

namespace Celeriac.IntegrationTests.Sqlite;

/// <summary>
/// Soft shutdown as a user runs it: a Quickstart worker process with <c>--soft-shutdown-timeout 5</c> and late acks gets
/// SIGTERM (a Kubernetes stop) while a 2 s and a 20 s task run.
/// </summary>
public sealed partial class SoftShutdownProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-soft-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string BrokerUrl => "sqlite:///" + Path.Join(_dir, "celeriac.db");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ChildProcess StartWorker(string name, params string[] extra) => ChildProcess.Start(
        _dir,
        new Dictionary<string, string> { ["CELERIAC_BROKER_URL"] = BrokerUrl, ["CELERIAC_TRACK_STARTED"] = "true", ["CELERIAC_ACKS_LATE"] = "true" },
        ["worker", "-c", "2", "-l", "info", "-n", name + "@%h", .. extra]);

    private static async Task WaitReadyAsync(ChildProcess worker)
    {
        try
        {
            await worker.Ready.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"worker not ready\n{worker.Stdout}\n{worker.Stderr}");
        }
    }

    private static async Task WaitStartedAsync(AsyncResult result)
    {
        using var started = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        started.CancelAfter(TimeSpan.FromSeconds(30));
        while (await result.GetStateAsync(started.Token) != TaskStates.Started)
        {
            await Task.Delay(50, started.Token);
        }
    }

    [Fact]
    public async Task SigTerm_SoftShutdownTimeout5_TwoSecondTaskFinishes_TwentySecondLateAckedTaskGoesBackAndRunsOnceOnTheNextWorker()
    {
        await using var client = new CeleriacApp(new CeleriacOptions { BrokerUrl = BrokerUrl });
        CeleriacTask sleep = client.Signature("tasks.sleep");
        AsyncResult shortTask;
        AsyncResult longTask;
        await using (ChildProcess first = StartWorker("first", "--soft-shutdown-timeout", "5"))
        {
            await WaitReadyAsync(first);
            shortTask = await sleep.DelayAsync(2);
            longTask = await sleep.DelayAsync(20);
            await WaitStartedAsync(shortTask);
            await WaitStartedAsync(longTask);

            var stopping = Stopwatch.StartNew();
            await first.SignalAsync("TERM");
            Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            TimeSpan stopped = stopping.Elapsed;

            // The short task finished within the timeout and its result is stored; the worker waited the timeout out for
            // the long one, then cut it off and gave it back.
            Assert.Equal(2, await shortTask.GetAsync<long>(TimeSpan.FromSeconds(5), Ct));
            Assert.InRange(stopped, TimeSpan.FromSeconds(4.5), TimeSpan.FromSeconds(15));
            Assert.Matches(CutAndReturned(), first.Stderr);
            Assert.Equal(TaskStates.Started, await longTask.GetStateAsync(Ct)); // no FAILURE stored: it went back
            Assert.Equal(1, await client.Transport.GetQueueLengthAsync(client.Options.DefaultQueue, Ct));
        }

        await using ChildProcess second = StartWorker("second");
        await WaitReadyAsync(second);
        Assert.Equal(20, await longTask.GetAsync<long>(TimeSpan.FromSeconds(60), Ct));
        Assert.Single(Regex.Matches(second.Stderr, $@"tasks\.sleep\[{longTask.Id}\] succeeded"));
    }

    [GeneratedRegex(@"tasks\.sleep\[[0-9a-f-]+\] cut off by the soft shutdown's timeout: returned to the queue")]
    private static partial Regex CutAndReturned();
}
