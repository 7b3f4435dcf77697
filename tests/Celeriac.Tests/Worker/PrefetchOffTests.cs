using System.Collections.Concurrent;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>
/// Prefetch off (<see cref="CeleriacOptions.DisablePrefetch"/>): a worker takes a message only when a slot is free to run
/// it, even with early acks, so a long task never waits behind a busy slot while another worker is idle.
/// </summary>
public sealed class PrefetchOffTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "prefetch-off");
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _release = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _started = new(StringComparer.Ordinal);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public static TheoryData<string, bool, bool, long> Windows()
    {
        var data = new TheoryData<string, bool, bool, long>();
        foreach (string broker in TestBrokers.Names)
        {
            // With prefetch on (a multiplier of 1), an early ack frees a place the worker cannot use yet, and it takes
            // the third task while both slots are busy: Celery's celery#1933. Prefetch off leaves it in the queue.
            data.Add(broker, false, false, 0);
            data.Add(broker, true, false, 1);
            data.Add(broker, true, true, 1);
        }

        return data;
    }

    public void Dispose() => _brokers.Dispose();

    [Theory]
    [MemberData(nameof(Windows))]
    public async Task TwoSlotsBusy_ThirdTaskStaysInTheQueueUntilOneIsFree(string broker, bool prefetchOff, bool acksLate, long leftInQueue)
    {
        await using CeleriacApp app = await NewAppAsync(broker, concurrency: 2, prefetchOff, acksLate);
        string queue = app.Options.DefaultQueue;
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        AsyncResult[] sent = [
            await app.SendTaskAsync("t.hold", ["a"], ct: Ct),
            await app.SendTaskAsync("t.hold", ["b"], ct: Ct),
            await app.SendTaskAsync("t.hold", ["c"], ct: Ct),
        ];

        Assert.True(await Poll.UntilAsync(() => _started.Count == 2, s_wait), "timed out waiting");
        Assert.True(await Poll.UntilAsync(async () => await app.Transport.GetQueueLengthAsync(queue, Ct) == leftInQueue, s_wait), "timed out waiting");

        // And it stays so: the worker does not come back for it while both slots are busy.
        await Task.Delay(500, Ct);
        Assert.Equal(2, _started.Count);
        Assert.Equal(leftInQueue, await app.Transport.GetQueueLengthAsync(queue, Ct));

        string first = _started.Keys.Order(StringComparer.Ordinal).First();
        _release[first].TrySetResult();
        Assert.True(await Poll.UntilAsync(() => _started.Count == 3, s_wait), "timed out waiting");
        Assert.Equal(0, await app.Transport.GetQueueLengthAsync(queue, Ct));
        foreach (TaskCompletionSource release in _release.Values)
        {
            release.TrySetResult();
        }

        foreach (AsyncResult result in sent)
        {
            Assert.Equal("done", await result.GetAsync<string>(s_wait, Ct));
        }
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task LongTaskOnABusyWorker_IsTakenByTheIdleOne(string broker)
    {
        string url = await _brokers.UrlAsync(broker);
        await using CeleriacApp busy = await NewAppAsync(broker, concurrency: 1, prefetchOff: true, acksLate: false, url, node: "busy@test");
        await using RunningWorker first = await RunningWorker.StartAsync(busy);
        AsyncResult one = await busy.SendTaskAsync("t.hold", ["one"], ct: Ct);
        AsyncResult two = await busy.SendTaskAsync("t.hold", ["two"], ct: Ct);
        Assert.True(await Poll.UntilAsync(() => _started.ContainsKey("one"), s_wait), "timed out waiting");

        // A second worker comes up while the first is busy: the second long task is still in the queue, so it runs now.
        await using CeleriacApp idle = await NewAppAsync(broker, concurrency: 1, prefetchOff: true, acksLate: false, url, node: "idle@test", queue: busy.Options.DefaultQueue);
        await using RunningWorker second = await RunningWorker.StartAsync(idle);
        Assert.True(await Poll.UntilAsync(() => _started.ContainsKey("two"), s_wait), "timed out waiting");

        Assert.Equal("busy@test", _started["one"]);
        Assert.Equal("idle@test", _started["two"]);
        Assert.Equal(TaskStates.Pending, await one.GetStateAsync(Ct)); // the first task is still running
        _release["one"].TrySetResult();
        _release["two"].TrySetResult();
        Assert.Equal("done", await one.GetAsync<string>(s_wait, Ct));
        Assert.Equal("done", await two.GetAsync<string>(s_wait, Ct));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task EtaTasksWaiting_DoNotHoldTheOnlySlot(string broker)
    {
        await using CeleriacApp app = await NewAppAsync(broker, concurrency: 1, prefetchOff: true, acksLate: false);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        AsyncResult[] later = await Task.WhenAll(Enumerable.Range(0, 5).Select(i =>
            app.SendTaskAsync("t.hold", ["later" + i], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(30) }, ct: Ct)));
        _release.GetOrAdd("now", _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

        AsyncResult now = await app.SendTaskAsync("t.hold", ["now"], ct: Ct);

        Assert.Equal("done", await now.GetAsync<string>(s_wait, Ct));
        foreach (AsyncResult r in later)
        {
            Assert.Equal(TaskStates.Pending, await r.GetStateAsync(Ct));
        }

        Assert.Equal(0, await app.Transport.GetQueueLengthAsync(app.Options.DefaultQueue, Ct));
    }

    private async Task<CeleriacApp> NewAppAsync(string broker, int concurrency, bool prefetchOff, bool acksLate, string? url = null, string? node = null, string? queue = null)
    {
        CeleriacApp app = await _brokers.NewAppAsync(broker, o =>
        {
            o.BrokerUrl = url ?? o.BrokerUrl;
            o.DefaultQueue = queue ?? o.DefaultQueue;
            o.NodeName = node;
            o.Concurrency = concurrency;
            o.DisablePrefetch = prefetchOff;
            o.PrefetchMultiplier = 1;
            o.AcksLate = acksLate;
        });
        app.Task("t.hold", async (string key, TaskContext context) =>
        {
            _started[key] = context.Hostname;
            await _release.GetOrAdd(key, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task.WaitAsync(context.CancellationToken);
            return "done";
        });
        return app;
    }
}
