using System.Text.Json;
using Celeriac.Events;
using Celeriac.Tests.Support;
using Celeriac.Transport;

namespace Celeriac.Tests.Events;

/// <summary>
/// <see cref="EventDispatcher"/>: task events buffered as Celery's worker buffers them (a list on <c>task.multi</c> once
/// 24 wait, or after the flush interval), other events at once on their own routing key, Python's types on the wire,
/// and a broker that does not take them costs bounded memory and one log line.
/// </summary>
public sealed class EventDispatcherTests : IAsyncDisposable
{
    private static readonly TimeSpan s_never = TimeSpan.FromMinutes(10);

    private readonly RecordingTransport _transport = new(new MemoryTransport(new Uri("memory://dispatcher-" + Guid.NewGuid().ToString("N"))));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private (string Exchange, string RoutingKey, TransportMessage Message)[] Published => [.. _transport.Published];

    private static JsonElement[] Events(TransportMessage m)
    {
        JsonElement body = JsonAssert.Parse(m.Body.Span);
        return body.ValueKind == JsonValueKind.Array ? [.. body.EnumerateArray()] : [body];
    }

    private static IEnumerable<KeyValuePair<string, object?>> Uuid(int i) => [new("uuid", "task-" + i)];

    [Fact]
    public async Task TwentyFourTaskEvents_OneListOnTaskMulti_WithoutWaitingForTheInterval_TheRestOnFlush()
    {
        var clock = new LamportClock();
        await using var events = new EventDispatcher(_transport, "w1@host", clock) { FlushInterval = s_never };
        for (int i = 0; i < 24; i++)
        {
            await events.SendAsync("task-started", Uuid(i), Ct);
        }

        Assert.True(await Poll.UntilAsync(() => Published.Length == 1, TimeSpan.FromSeconds(10)), "the full buffer was not sent");
        await events.SendAsync("task-started", Uuid(24), Ct);
        (string exchange, string key, TransportMessage message) = Published[0];
        Assert.Equal(("celeryev", "task.multi", 1, "w1@host"), (exchange, key, message.DeliveryMode, message.Headers["hostname"]));
        JsonElement[] sent = Events(message);
        Assert.Equal(24, sent.Length);
        Assert.Equal(Enumerable.Range(1, 24).Select(i => (long)i), sent.Select(e => e.GetProperty("clock").GetInt64()));
        Assert.Equal(Enumerable.Range(0, 24).Select(i => "task-" + i), sent.Select(e => e.GetProperty("uuid").GetString()));

        // The 25th waits for its interval (ten minutes here) or a flush.
        await Task.Delay(200, Ct);
        Assert.Single(Published);
        await events.FlushAsync(Ct);
        Assert.Equal(["task-24"], Events(Published[1].Message).Select(e => e.GetProperty("uuid").GetString()));
    }

    [Fact]
    public async Task LoneTaskEvent_SentWithinTheFlushInterval()
    {
        await using var events = new EventDispatcher(_transport, "w1@host", new LamportClock());
        await events.SendAsync("task-received", Uuid(1), Ct);

        Assert.True(await Poll.UntilAsync(() => Published.Length == 1, TimeSpan.FromSeconds(5)), "a lone event was held");
        Assert.Equal("task.multi", Published[0].RoutingKey);
    }

    [Fact]
    public async Task ManyTaskEvents_FromManyThreads_AllSentInListsOfAtMost24()
    {
        await using var events = new EventDispatcher(_transport, "w1@host", new LamportClock());
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(async () =>
        {
            for (int i = 0; i < 2_500; i++)
            {
                await events.SendAsync("task-succeeded", Uuid((t * 10_000) + i), Ct);
            }
        }, Ct)));

        Assert.True(await Poll.UntilAsync(() => Published.Sum(p => Events(p.Message).Length) == 10_000, TimeSpan.FromSeconds(10)), "not every event was sent");
        Assert.All(Published, p => Assert.InRange(Events(p.Message).Length, 1, 24));
        Assert.Equal(10_000, Published.SelectMany(p => Events(p.Message)).Select(e => e.GetProperty("clock").GetInt64()).Distinct().Count());
        Assert.Equal(0, events.Dropped);
    }

    [Fact]
    public async Task WorkerEvent_SentAloneAtOnce_OnItsRoutingKey_WithPythonTypes()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, 500, TimeSpan.Zero));
        await using var events = new EventDispatcher(_transport, "w1@host", new LamportClock(), time) { FlushInterval = s_never };
        await events.SendAsync("worker-custom", new Dictionary<string, object?>
        {
            ["freq"] = 2.0,
            ["active"] = 3L,
            ["loadavg"] = new List<object?> { 1.0, 0.5, 0.25 },
            ["sw_ident"] = "celeriac",
            ["none"] = null,
        }, Ct);

        (string exchange, string key, TransportMessage message) = Assert.Single(Published);
        Assert.Equal(("celeryev", "worker.custom"), (exchange, key));
        JsonElement e = JsonAssert.Parse(message.Body.Span);
        Assert.Equal(
            "active:int, clock:int, freq:float, hostname:str, loadavg:list, none:None, pid:int, sw_ident:str, timestamp:float, type:str, utcoffset:int",
            JsonAssert.Shape(e));
        Assert.Equal(["hostname", "utcoffset", "pid", "clock"], JsonAssert.Keys(e)[..4]);
        Assert.Equal(["timestamp", "type"], JsonAssert.Keys(e)[^2..]);
        Assert.Equal("2.0", e.GetProperty("freq").GetRawText());
        Assert.Equal("1772366400.5", e.GetProperty("timestamp").GetRawText());
        time.Advance(TimeSpan.FromMilliseconds(500));
        await events.SendAsync("worker-custom", null, Ct);
        Assert.Equal("1772366401.0", JsonAssert.Parse(Published[^1].Message.Body.Span).GetProperty("timestamp").GetRawText());
        Assert.Equal("[1.0,0.5,0.25]", e.GetProperty("loadavg").GetRawText());
    }

    [Fact]
    public async Task Dispose_SendsWhatIsBuffered()
    {
        var events = new EventDispatcher(_transport, "w1@host", new LamportClock()) { FlushInterval = s_never };
        await events.SendAsync("task-started", Uuid(1), Ct);
        Assert.Empty(Published);

        await events.DisposeAsync();

        Assert.Equal(["task-1"], Events(Assert.Single(Published).Message).Select(e => e.GetProperty("uuid").GetString()));
    }

    [Fact]
    public async Task BrokerNotTakingEvents_BufferBounded_ExtraDroppedAndLoggedOnce_NothingThrown()
    {
        var gated = new GatedTransport();
        var logs = new CollectingLoggerFactory();
        var events = new EventDispatcher(gated, "w1@host", new LamportClock(), loggerFactory: logs) { BufferLimit = 5, MaxBuffered = 10, FlushInterval = s_never };
        for (int i = 0; i < 5; i++)
        {
            await events.SendAsync("task-started", Uuid(i), Ct);
        }

        // The first list is on its way and the broker does not answer: ten more wait, the next fifteen are dropped.
        Assert.True(await Poll.UntilAsync(() => gated.Calls == 1, TimeSpan.FromSeconds(10)));
        for (int i = 5; i < 30; i++)
        {
            await events.SendAsync("task-started", Uuid(i), Ct);
        }

        Assert.Equal(15, events.Dropped);
        gated.Open.SetException(new InvalidOperationException("broker down"));
        await events.DisposeAsync();

        Assert.Equal(1, logs.Count(121));
        Assert.True(logs.Count(120) >= 1, "the failed publish is logged");
        Assert.Equal(10, gated.Sent);
    }

    public async ValueTask DisposeAsync() => await _transport.DisposeAsync();

    /// <summary>A broker whose first publish hangs until the test opens (or fails) it; later ones are counted.</summary>
    private sealed class GatedTransport : ITransport
    {
        private int _calls;
        private int _sent;

        public TaskCompletionSource Open { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Calls => Volatile.Read(ref _calls);

        public int Sent => Volatile.Read(ref _sent);

        public async ValueTask PublishAsync(string exchange, string routingKey, IReadOnlyList<TransportMessage> messages, CancellationToken ct = default)
        {
            if (Interlocked.Increment(ref _calls) == 1)
            {
                await Open.Task;
            }

            Interlocked.Add(ref _sent, messages.Sum(m => JsonAssert.Parse(m.Body.Span).GetArrayLength()));
        }

        public ValueTask DeclareQueueAsync(QueueDeclaration queue, CancellationToken ct = default) => ValueTask.CompletedTask;

        public IAsyncEnumerable<Delivery> ConsumeAsync(ConsumeOptions options, CancellationToken ct = default) => throw new NotSupportedException();

        public ValueTask<IAsyncDisposable> SubscribeAsync(string exchange, Func<TransportMessage, ValueTask> handler, SubscriberBinding? queue = null, CancellationToken ct = default) => throw new NotSupportedException();

        public ValueTask<long> GetQueueLengthAsync(string queue, CancellationToken ct = default) => ValueTask.FromResult(0L);

        public ValueTask<long> PurgeAsync(string queue, CancellationToken ct = default) => ValueTask.FromResult(0L);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
