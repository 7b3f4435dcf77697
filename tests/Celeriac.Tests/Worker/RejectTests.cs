using System.Collections.Concurrent;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>A task rejecting its own message (Celery's <c>Reject</c>), on SQLite, Redis and RabbitMQ.</summary>
public sealed class RejectTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "reject");
    private readonly string _queue = "reject-" + Guid.NewGuid().ToString("N")[..8];
    private readonly ConcurrentDictionary<string, int> _runs = new(StringComparer.Ordinal);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public void Dispose() => _brokers.Dispose();

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task RejectWithRequeue_RunsAgain_RejectWithout_IsDroppedAndStoresNothing(string broker)
    {
        await using var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = await _brokers.UrlAsync(broker),
            DefaultQueue = _queue,
            Concurrency = 1,
            AcksLate = true,
        });
        app.Task("tasks.picky", (string name) =>
        {
            int run = _runs.AddOrUpdate(name, 1, (_, n) => n + 1);
            return name switch
            {
                "again" when run == 1 => throw new RejectException("not yet", requeue: true),
                "never" => throw new RejectException("not for me"),
                _ => run,
            };
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        AsyncResult again = await app.SendTaskAsync("tasks.picky", ["again"], ct: Ct);
        AsyncResult never = await app.SendTaskAsync("tasks.picky", ["never"], ct: Ct);
        Assert.Equal(2, await again.GetAsync<int>(TimeSpan.FromSeconds(15), Ct));

        await Poll.UntilAsync(() => _runs.ContainsKey("never"), TimeSpan.FromSeconds(10));

        await Task.Delay(500, Ct);
        Assert.Equal(1, _runs["never"]);
        Assert.Equal(TaskStates.Pending, await never.GetStateAsync(Ct));
        Assert.Equal(0, await app.Transport.GetQueueLengthAsync(_queue, Ct));
    }
}
