using Celeriac.Redis;
using Celeriac.Results;
using Celeriac.Transport;

namespace Celeriac.InteropTests.Redis;

/// <summary>A Celeriac worker dies holding a late-acked task; a Python Celery worker restores it from kombu's unacked hash and runs it.</summary>
public sealed class DeadWorkerInteropTests(RedisInteropFixture fx)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CeleriacConsumerDied_HoldingTask_PythonWorkerRestoresAndRunsItAfterVisibilityTimeout()
    {
        // Databases of its own: the Python worker restores every expired entry of its database's unacked hash.
        string broker = fx.Server.Url(2);
        string backend = fx.Server.Url(3);
        const string Queue = "interop.dead";
        await using var client = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker, ResultBackend = backend });
        AsyncResult sent = await client.SendTaskAsync("tasks.echo", ["rescued"], options: new ApplyOptions { Queue = Queue }, ct: Ct);

        // The victim takes the message and dies without settling it: no ack, no renewal, nothing given back.
        var victim = new RedisTransport(new TransportOptions { Url = new Uri(broker), VisibilityTimeout = TimeSpan.FromSeconds(2) });
        using (var within = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            within.CancelAfter(TimeSpan.FromSeconds(20));
            await foreach (Delivery taken in victim.ConsumeAsync(new ConsumeOptions { Queues = [Queue], Prefetch = 1 }, within.Token))
            {
                Assert.Equal(sent.Id, taken.Message!.Headers["id"]);
                break;
            }
        }

        await victim.KillAsync();
        Assert.Contains(sent.Id, await fx.Server.CliAsync("-n", "2", "HVALS", "unacked"), StringComparison.Ordinal);
        Assert.Equal("0", (await fx.Server.CliAsync("-n", "2", "LLEN", Queue)).Trim());

        await Task.Delay(TimeSpan.FromSeconds(2.5), Ct);
        await using PythonWorker rescuer = await PythonWorker.StartAsync(broker, backend, Queue, concurrency: 1, nodeName: "py-rescuer@localhost", visibilityTimeout: 2);
        TaskResultMeta meta = await sent.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal((TaskStates.Success, "\"rescued\""), (meta.Status, meta.ResultElement.GetRawText()));
        await rescuer.WaitForLogAsync($"Task tasks.echo[{sent.Id}] succeeded", TimeSpan.FromSeconds(10));
        Assert.Equal("0", (await fx.Server.CliAsync("-n", "2", "HLEN", "unacked")).Trim());
    }
}
