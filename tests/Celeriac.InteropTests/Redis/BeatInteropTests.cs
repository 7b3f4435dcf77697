using System.Collections.Concurrent;
using Celeriac.Beat;

namespace Celeriac.InteropTests.Redis;

/// <summary>Celeriac's beat sends ordinary Celery messages: a Python Celery 5.2 worker runs them and stores their results.</summary>
public sealed class BeatInteropTests(RedisInteropFixture fx)
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CeleriacBeat_EverySecondEntry_PythonWorkerRunsEachRun()
    {
        var entry = new BeatEntry
        {
            Name = "py-every-second-" + Guid.NewGuid().ToString("N")[..6],
            Task = "tasks.add",
            Schedule = new IntervalSchedule(TimeSpan.FromSeconds(1)),
            Args = System.Text.Json.JsonDocument.Parse("[20, 22]").RootElement,
            Queue = RedisInteropFixture.PythonQueue,
        };
        var beat = new CeleriacBeat(fx.Client, [entry], new MemoryBeatStore());
        var sent = new ConcurrentQueue<BeatRunEventArgs>();
        beat.Sent += (_, e) => sent.Enqueue(e);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task run = beat.RunAsync(stop.Token);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (sent.Count < 3 && clock.Elapsed < s_wait)
        {
            await Task.Delay(100, Ct);
        }

        await stop.CancelAsync();
        await run.WaitAsync(s_wait, Ct);

        Assert.True(sent.Count >= 3, $"beat sent {sent.Count} runs in {clock.Elapsed}");
        foreach (BeatRunEventArgs r in sent)
        {
            Assert.Equal(42, await fx.Client.AsyncResult(r.TaskId).GetAsync<int>(s_wait, Ct));
        }
    }
}
