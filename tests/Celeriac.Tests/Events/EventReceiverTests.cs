using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Celeriac.Events;
using Celeriac.Protocol;
using Celeriac.Tests.Support;
using Celeriac.Transport;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Events;

/// <summary>
/// <see cref="EventReceiver"/> reading what Celery 5.2.6 published (every <c>redis-event-*</c> capture, replayed on the
/// in-process broker), and bad input: each unreadable message is skipped with one log line and reading goes on.
/// </summary>
public sealed class EventReceiverTests : IAsyncDisposable
{
    private readonly MemoryTransport _transport = new(new Uri("memory://receiver-" + Guid.NewGuid().ToString("N")));
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
    private readonly ConcurrentQueue<CeleryEvent> _read = new();
    private Task _reading = Task.CompletedTask;

    private async Task<EventReceiver> StartAsync(LamportClock clock, CollectingLoggerFactory? logs = null)
    {
        var receiver = new EventReceiver(_transport, clock, _time, logs) { WakeupWorkers = false };
        _reading = Task.Run(async () =>
        {
            await foreach (CeleryEvent e in receiver.ReadAsync(_stop.Token))
            {
                _read.Enqueue(e);
            }
        }, TestContext.Current.CancellationToken);
        await receiver.Subscribed.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        return receiver;
    }

    private static IEnumerable<TransportMessage> CelerysMessages()
    {
        foreach (string file in WireSamples.FileNames.Where(f => f.StartsWith("redis-event-", StringComparison.Ordinal)))
        {
            using JsonDocument doc = WireSamples.Load(file);
            foreach (JsonElement e in doc.RootElement.GetProperty("events").EnumerateArray())
            {
                Assert.True(KombuEnvelope.TryDecode(Encoding.UTF8.GetBytes(e.GetProperty("args")[2].GetString()!), out TransportMessage? m, out string? error), error);
                yield return m!;
            }
        }
    }

    private static int EventCount(TransportMessage m)
    {
        JsonElement body = JsonAssert.Parse(m.Body.Span);
        return body.ValueKind == JsonValueKind.Array ? body.GetArrayLength() : 1;
    }

    [Fact]
    public async Task CelerysCaptures_EveryEventRead_ListsExpanded_ClockSynced_AndAStateBuiltFromThem()
    {
        var clock = new LamportClock();
        await StartAsync(clock);
        TransportMessage[] celery = [.. CelerysMessages()];
        foreach (TransportMessage m in celery)
        {
            await _transport.PublishAsync(EventMessages.Exchange, m.RoutingKey, [m], TestContext.Current.CancellationToken);
        }

        int expected = celery.Sum(EventCount);
        Assert.True(await Poll.UntilAsync(() => _read.Count >= expected, TimeSpan.FromSeconds(10)), $"{_read.Count} of {expected} read");

        Assert.Equal(celery.SelectMany(m => Types(m)), _read.Select(e => e.Type));
        Assert.All(_read, e => Assert.Equal(EventMessages.Timestamp(_time.GetUtcNow()), e.LocalReceived));
        Assert.All(_read.Where(e => e.Group == "task"), e => Assert.NotNull(e.Uuid));

        // Celery's clock rules: the receiver's clock passes every worker event's; a client's task-sent is not trusted.
        Assert.True(clock.Value > _read.Where(e => e.Type != "task-sent").Max(e => e.Clock));
        Assert.All(_read.Where(e => e.Type == "task-sent"), e => Assert.True(e.Clock < 91, "task-sent takes the receiver's clock less one"));

        var state = new ClusterState(_time);
        foreach (CeleryEvent e in _read)
        {
            state.Apply(e);
        }

        ClusterWorker worker = state.GetWorker("wire@vm")!;
        Assert.Equal(("py-celery", "5.2.6", 2.0, "Linux"), (worker.SwIdent, worker.SwVer, worker.Freq, worker.SwSys));
        ClusterTask add = state.GetTask("845b105b-3e05-40e7-b58a-d1c6d94f9d8f")!;
        Assert.Equal((TaskStates.Success, "wireapp.add", "(2, 3)", "5", 0.02015108599971427, "wire@vm", "gen15472@vm"), (add.State, add.Name, add.Args, add.Result, add.Runtime, add.Worker, add.Client));
        ClusterTask failed = state.GetTask("5968cd7d-9c75-43a5-8849-4aca417d3180")!;
        Assert.Equal((TaskStates.Failure, "ValueError('boom: something went wrong')"), (failed.State, failed.Exception));
        Assert.Equal(TaskStates.Revoked, state.GetTask("2a7afb8b-7680-436a-8539-c57143ef7bf7")!.State);
    }

    private static IEnumerable<string> Types(TransportMessage m)
    {
        JsonElement body = JsonAssert.Parse(m.Body.Span);
        return body.ValueKind == JsonValueKind.Array
            ? [.. body.EnumerateArray().Select(e => e.GetProperty("type").GetString()!)]
            : [body.GetProperty("type").GetString()!];
    }

    [Fact]
    public async Task BadMessages_EachSkippedWithOneLogLine_TheEventsAroundThemRead()
    {
        var logs = new CollectingLoggerFactory();
        await StartAsync(new LamportClock(), logs);
        TransportMessage Raw(string json, string contentType = "application/json") =>
            EventMessages.Message("bad@host", Encoding.UTF8.GetBytes(json)) with { ContentType = contentType };
        TransportMessage[] messages =
        [
            Raw("""{"type": "task-started", "uuid": "first", "hostname": "w@h", "clock": 1}"""),
            Raw("not json at all"),
            Raw("\"a string\""),
            Raw("""[1, {"type": "task-started", "uuid": "in-a-list", "hostname": "w@h", "clock": 2}]"""),
            Raw("""{"uuid": "no-type"}"""),
            Raw("gAN9cQBYBAAAAHR5cGVxAVgMAAAAdGFzay1zdGFydGVkcQJzLg==", "application/x-python-serialize"),
            Raw("""{"type": "task-started", "uuid": "last", "hostname": "w@h", "clock": 3}"""),
        ];
        foreach (TransportMessage m in messages)
        {
            await _transport.PublishAsync(EventMessages.Exchange, "task.started", [m], TestContext.Current.CancellationToken);
        }

        Assert.True(await Poll.UntilAsync(() => _read.Any(e => e.Uuid == "last"), TimeSpan.FromSeconds(10)), "the event after the bad ones was not read");
        Assert.Equal(["first", "in-a-list", "last"], _read.Select(e => e.Uuid));
        Assert.Equal(5, logs.Count(122));
    }

    [Fact]
    public async Task Clock_TaskSentTakesTheReceiversLessOne_OthersMoveThePast_MissingGetsTheNext()
    {
        var clock = new LamportClock();
        for (int i = 0; i < 10; i++)
        {
            clock.Forward();
        }

        await StartAsync(clock);
        async Task SendAsync(string json)
        {
            int before = _read.Count;
            await _transport.PublishAsync(EventMessages.Exchange, "x", [EventMessages.Message("h", Encoding.UTF8.GetBytes(json))], TestContext.Current.CancellationToken);
            Assert.True(await Poll.UntilAsync(() => _read.Count > before, TimeSpan.FromSeconds(10)));
        }

        await SendAsync("""{"type": "task-sent", "uuid": "a", "clock": 99}""");
        Assert.Equal((9L, 11L), (_read.Last().Clock, clock.Value));
        await SendAsync("""{"type": "worker-heartbeat", "hostname": "w@h", "clock": 50}""");
        Assert.Equal((50L, 51L), (_read.Last().Clock, clock.Value));
        await SendAsync("""{"type": "worker-heartbeat", "hostname": "w@h"}""");
        Assert.Equal((52L, 52L), (_read.Last().Clock, clock.Value));
    }

    [Fact]
    public async Task Timestamp_MovedFromTheSendersZoneToTheReceivers_AsCeleryDoes()
    {
        await StartAsync(new LamportClock());
        await _transport.PublishAsync(EventMessages.Exchange, "worker.heartbeat", [EventMessages.Message("h", """{"type": "worker-heartbeat", "hostname": "east@h", "utcoffset": -2, "timestamp": 1000.5, "clock": 1}"""u8.ToArray())], TestContext.Current.CancellationToken);
        Assert.True(await Poll.UntilAsync(() => !_read.IsEmpty, TimeSpan.FromSeconds(10)));

        // adjust_timestamp(ts, offset) = ts - (offset - here) * 3600, with here = 0 on this receiver's UTC clock.
        Assert.Equal(1000.5 + 7200, Assert.Single(_read).Timestamp);
    }

    [Fact]
    public async Task WakeupWorkers_BroadcastsCelerysHeartbeatRequestOnThePidbox()
    {
        var requests = new ConcurrentQueue<TransportMessage>();
        await using IAsyncDisposable pidbox = await _transport.SubscribeAsync(Control.Mailbox.Exchange, m =>
        {
            requests.Enqueue(m);
            return ValueTask.CompletedTask;
        }, ct: TestContext.Current.CancellationToken);
        var receiver = new EventReceiver(_transport, null, _time);
        _reading = Task.Run(async () =>
        {
            await foreach (CeleryEvent e in receiver.ReadAsync(_stop.Token))
            {
                _read.Enqueue(e);
            }
        }, TestContext.Current.CancellationToken);

        Assert.True(await Poll.UntilAsync(() => !requests.IsEmpty, TimeSpan.FromSeconds(10)), "no heartbeat request");
        Assert.True(Control.Mailbox.TryParse(Assert.Single(requests), out Control.ControlRequest? request));
        Assert.Equal(("heartbeat", null, null), (request!.Method, request.Destination, request.ReplyExchange));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _reading.WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
        await _transport.DisposeAsync();
    }
}
