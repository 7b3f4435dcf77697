using System.Collections.Concurrent;
using System.Diagnostics;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>
/// Issue 6's acceptance: a worker restarted (warm) while tasks are revoked, retried and scheduled; afterwards each
/// ran as often as Celery's semantics say: scheduled ones once, revoked ones never, a task retried twice three times.
/// </summary>
public sealed class RestartSemanticsTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "restart");
    private readonly ConcurrentDictionary<string, int> _runs = new(StringComparer.Ordinal);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public void Dispose() => _brokers.Dispose();

    private async Task<CeleriacApp> NewAppAsync(string url, string? results, string queue, string stateDb)
    {
        CeleriacApp app = await _brokers.NewAppAsync("sqlite", o =>
        {
            o.BrokerUrl = url;
            o.ResultBackend = results;
            o.DefaultQueue = queue;
            o.StateDb = stateDb;
        });
        app.Task("tasks.count", (string name) => _runs.AddOrUpdate(name, 1, (_, n) => n + 1));
        app.Task("tasks.twice", async (string name, TaskContext context) =>
        {
            _runs.AddOrUpdate(name, 1, (_, n) => n + 1);
            return context.Retries < 2 ? throw await context.RetryAsync(new TimeoutException("again"), countdown: TimeSpan.FromSeconds(1)) : context.Retries;
        });
        return app;
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task WarmRestart_WhileRevokedRetriedAndScheduled_EachRunsAsCelerySays(string broker)
    {
        string url = await _brokers.UrlAsync(broker);

        // The restarted worker's app reads the results the first one stored.
        string? results = _brokers.SharedResultBackend(broker);
        string queue = "restart-" + Guid.NewGuid().ToString("N")[..8];
        string stateDb = Path.Join(_brokers.Directory, "worker.state");
        var scheduled = new List<AsyncResult>();
        var revoked = new List<AsyncResult>();
        var retried = new List<AsyncResult>();

        await using (CeleriacApp first = await NewAppAsync(url, results, queue, stateDb))
        {
            RunningWorker worker = await RunningWorker.StartAsync(first);
            await using (worker)
            {
                var due = new ApplyOptions { Countdown = TimeSpan.FromSeconds(3) };
                for (int i = 0; i < 20; i++)
                {
                    scheduled.Add(await first.SendTaskAsync("tasks.count", ["scheduled" + i], options: due, ct: Ct));
                }

                for (int i = 0; i < 10; i++)
                {
                    revoked.Add(await first.SendTaskAsync("tasks.count", ["revoked" + i], options: due, ct: Ct));
                    retried.Add(await first.SendTaskAsync("tasks.twice", ["retried" + i], ct: Ct));
                }

                await first.RevokeAsync(revoked.Select(r => r.Id), Ct);
                var clock = Stopwatch.StartNew();
                while ((revoked.Any(r => !worker.Worker.Revoked.Contains(r.Id)) || Enumerable.Range(0, 10).Any(i => !_runs.ContainsKey("retried" + i)))
                    && clock.Elapsed < TimeSpan.FromSeconds(10))
                {
                    await Task.Delay(20, Ct);
                }

                // Stopped with the scheduled and revoked ones waiting for their countdown and the retries waiting too.
                await worker.StopAsync();
            }
        }

        Assert.All(Enumerable.Range(0, 20), i => Assert.False(_runs.ContainsKey("scheduled" + i)));
        await using CeleriacApp second = await NewAppAsync(url, results, queue, stateDb);
        await using RunningWorker restarted = await RunningWorker.StartAsync(second);

        foreach (AsyncResult r in scheduled)
        {
            await second.AsyncResult(r.Id).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        }

        foreach (AsyncResult r in retried)
        {
            Assert.Equal(2, await second.AsyncResult(r.Id).GetAsync<int>(TimeSpan.FromSeconds(30), Ct));
        }

        foreach (AsyncResult r in revoked)
        {
            TaskResultMeta meta = await second.AsyncResult(r.Id).WaitAsync(TimeSpan.FromSeconds(30), Ct);
            Assert.Equal((TaskStates.Revoked, "revoked"), (meta.Status, meta.Exception?.Message));
        }

        await Task.Delay(500, Ct);
        Assert.All(Enumerable.Range(0, 20), i => Assert.Equal(1, _runs["scheduled" + i]));
        Assert.All(Enumerable.Range(0, 10), i => Assert.False(_runs.ContainsKey("revoked" + i)));
        Assert.All(Enumerable.Range(0, 10), i => Assert.Equal(3, _runs["retried" + i]));
    }
}
