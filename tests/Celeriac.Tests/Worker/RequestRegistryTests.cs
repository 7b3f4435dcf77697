using Celeriac.Protocol;
using Celeriac.Transport;
using Celeriac.Worker;

namespace Celeriac.Tests.Worker;

/// <summary>The request registry, read by inspect and the test harness while slots settle requests.</summary>
public sealed class RequestRegistryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Snapshot_ARequestWhoseMessageWasDisposedMeanwhile_IsLeftOut()
    {
        // A slot disposes a finished request's message as it releases it; a snapshot taken in between (the harness
        // polls GetRequests all the time) must not throw ObjectDisposedException at its reader.
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://" + Guid.NewGuid().ToString("N") });
        var worker = new CeleriacWorker(app);
        ITransport transport = app.Transport;
        await app.SendTaskAsync("t.a", [1], ct: Ct);
        await app.SendTaskAsync("t.b", [2], ct: Ct);
        var deliveries = new List<Delivery>();
        await foreach (Delivery d in transport.ConsumeAsync(new ConsumeOptions { Queues = ["celery"], Prefetch = 2 }, Ct))
        {
            deliveries.Add(d);
            if (deliveries.Count == 2)
            {
                break;
            }
        }

        var registry = new RequestRegistry();
        var requests = new List<WorkerRequest>();
        foreach (Delivery d in deliveries)
        {
            Assert.True(TaskMessage.TryDecode(d.Message!, out TaskMessage? message, out _, out _, out _));
            var request = new WorkerRequest(d, worker) { Message = message };
            registry.Reserve(request);
            requests.Add(request);
        }

        requests[0].Message!.Dispose();

        RequestInfo info = Assert.Single(registry.Snapshot(RequestState.Reserved, "w@h"));
        Assert.Equal(("t.b", "[2]"), (info.Name, info.Args));
    }
}
