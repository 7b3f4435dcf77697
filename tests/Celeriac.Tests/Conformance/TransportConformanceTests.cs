using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using Celeriac.Transport;

namespace Celeriac.Tests.Conformance;

/// <summary>How a test wants its transport.</summary>
/// <param name="Peer">
/// A transport on the same store as another process would have it (its own connection, no in-process
/// wake-ups shared with the first one).
/// </param>
/// <param name="VisibilityTimeout">The visibility timeout; <see langword="null"/> for the default (1 hour).</param>
public sealed record TransportSetup(bool Peer = false, TimeSpan? VisibilityTimeout = null);

/// <summary>
/// What every <see cref="ITransport"/> must do, tested the same way on each (as runtime's
/// DependencyInjectionSpecificationTests). A subclass makes transports on a fresh store per test.
/// </summary>
public abstract class TransportConformanceTests : IAsyncDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_quiet = TimeSpan.FromMilliseconds(400);
    private readonly List<ITransport> _transports = [];
    private readonly List<Consumer> _consumers = [];

    /// <summary>Creates a transport on this test's store.</summary>
    protected abstract ValueTask<ITransport> CreateTransportAsync(TransportSetup setup);

    /// <summary>
    /// Stops a transport as <c>kill -9</c> stops its process: it renews nothing, gives nothing back and
    /// flushes nothing. Stores without process death skip the tests that need it.
    /// </summary>
    protected virtual ValueTask KillAsync(ITransport transport)
    {
        Assert.Skip("This transport has no process death to simulate.");
        return ValueTask.CompletedTask;
    }

    /// <summary>Why the store does not order by priority, or <see langword="null"/> when it does.</summary>
    protected virtual string? NoPrioritiesReason => null;

    /// <summary>Whether a higher priority number is served first (AMQP), rather than a lower one (kombu on Redis).</summary>
    protected virtual bool HigherPriorityFirst => false;

    /// <summary>Whether a dead consumer's messages come back at once (AMQP: the broker sees the connection close), not after the visibility timeout.</summary>
    protected virtual bool RedeliversAtOnceWhenConsumerDies => false;

    /// <summary>Whether the broker counts the prefetch itself (AMQP's basic.qos): it delivers as soon as room opens.</summary>
    protected virtual bool BrokerCountsPrefetch => false;

    /// <summary>
    /// Whether a requeued message is always delivered again before the messages behind it. RabbitMQ puts it back at
    /// its place, but with a channel-wide prefetch (Celery's and ours) the freed credit may reach the queue before the
    /// requeue does, so the next message can come first.
    /// </summary>
    protected virtual bool RequeuedComesFirst => true;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<ITransport> NewAsync(TransportSetup? setup = null)
    {
        ITransport t = await CreateTransportAsync(setup ?? new TransportSetup());
        lock (_transports)
        {
            _transports.Add(t);
        }

        return t;
    }

    private Consumer Consume(ITransport transport, int prefetch, params string[] queues) =>
        Consume(transport, new ConsumeOptions { Queues = queues, Prefetch = prefetch });

    private Consumer Consume(ITransport transport, ConsumeOptions options)
    {
        var c = new Consumer(transport, options);
        _consumers.Add(c);
        return c;
    }

    protected static TransportMessage Message(string text, int? priority = null) => new()
    {
        Body = Encoding.UTF8.GetBytes($"[[\"{text}\"], {{}}, {{}}]"),
        Headers = new Dictionary<string, object?>(StringComparer.Ordinal) { ["id"] = text, ["task"] = "tests.t", ["retries"] = 3L },
        CorrelationId = text,
        ReplyTo = "reply-" + text,
        Priority = priority,
    };

    private static string IdOf(Delivery d) => Assert.IsType<string>(d.Message!.Headers["id"]);

    private static string Queue() => "q-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task PublishAsync_ThenConsume_PreservesBodyHeadersAndProperties()
    {
        ITransport t = await NewAsync();
        string q = Queue();
        await t.DeclareQueueAsync(new QueueDeclaration(q, q, q), Ct);
        TransportMessage sent = Message("m1", priority: 3) with { Expiration = "60000" };

        await t.PublishAsync(q, q, [sent], Ct);
        Delivery d = await Consume(t, 4, q).NextAsync();

        Assert.Equal(q, d.Queue);
        Assert.False(d.Redelivered);
        Assert.Null(d.DecodeError);
        TransportMessage got = Assert.IsType<TransportMessage>(d.Message);
        Assert.Equal(sent.Body.ToArray(), got.Body.ToArray());
        Assert.Equal("application/json", got.ContentType);
        Assert.Equal("utf-8", got.ContentEncoding);
        Assert.Equal("m1", got.Headers["id"]);
        Assert.Equal("tests.t", got.Headers["task"]);
        Assert.Equal(3L, got.Headers["retries"]);
        Assert.Equal("m1", got.CorrelationId);
        Assert.Equal("reply-m1", got.ReplyTo);
        Assert.Equal(3, got.Priority);
        Assert.Equal("60000", got.Expiration);
        Assert.Equal(q, got.Exchange);
        Assert.Equal(q, got.RoutingKey);
        await d.AckAsync(Ct);
    }

    [Fact]
    public async Task ConsumeAsync_SamePriority_IsFifo()
    {
        ITransport t = await NewAsync();
        string q = Queue();
        string[] ids = [.. Enumerable.Range(0, 50).Select(i => "m" + i)];
        await t.PublishAsync("", q, [.. ids.Take(25).Select(id => Message(id))], Ct);
        await t.PublishAsync("", q, [.. ids.Skip(25).Select(id => Message(id))], Ct);

        Consumer c = Consume(t, 7, q);
        var got = new List<string>();
        for (int i = 0; i < ids.Length; i++)
        {
            Delivery d = await c.NextAsync();
            got.Add(IdOf(d));
            await d.AckAsync(Ct);
        }

        Assert.Equal(ids, got);
    }

    [Fact]
    public async Task ConsumeAsync_Priorities_ServedInTheBrokersOrderFifoWithin()
    {
        if (NoPrioritiesReason is { } reason)
        {
            Assert.Skip(reason);
        }

        ITransport t = await NewAsync();
        string q = Queue();
        await t.DeclareQueueAsync(new QueueDeclaration(q, MaxPriority: 9), Ct);
        await t.PublishAsync("", q, [Message("a9", 9), Message("b5", 5), Message("c0", 0), Message("d5", 5), Message("e9", 9), Message("f-none")], Ct);

        Consumer c = Consume(t, 1, q);
        var got = new List<string>();
        for (int i = 0; i < 6; i++)
        {
            Delivery d = await c.NextAsync();
            got.Add(IdOf(d));
            await d.AckAsync(Ct);
        }

        // No priority is 0 on every broker; kombu's Redis lists serve a lower number first, AMQP a higher one.
        Assert.Equal(HigherPriorityFirst ? ["a9", "e9", "b5", "d5", "c0", "f-none"] : ["c0", "f-none", "b5", "d5", "a9", "e9"], got);
    }

    [Fact]
    public async Task ConsumeAsync_SeveralQueues_ServesEachFairly()
    {
        ITransport t = await NewAsync();
        string q1 = Queue(), q2 = Queue();
        await t.PublishAsync("", q1, [.. Enumerable.Range(0, 30).Select(i => Message("a" + i))], Ct);
        await t.PublishAsync("", q2, [.. Enumerable.Range(0, 30).Select(i => Message("b" + i))], Ct);

        Consumer c = Consume(t, 4, q1, q2);
        var firstTen = new List<Delivery>();
        for (int i = 0; i < 10; i++)
        {
            Delivery d = await c.NextAsync();
            firstTen.Add(d);
            await d.AckAsync(Ct);
        }

        Assert.InRange(firstTen.Count(d => d.Queue == q1), 3, 7);
        Assert.InRange(firstTen.Count(d => d.Queue == q2), 3, 7);
    }

    [Fact]
    public async Task ConsumeAsync_Prefetch3_HoldsThreeUntilOneIsAcked()
    {
        ITransport t = await NewAsync();
        string q = Queue();
        await t.PublishAsync("", q, [.. Enumerable.Range(0, 6).Select(i => Message("m" + i))], Ct);

        Consumer c = Consume(t, 3, q);
        Delivery d0 = await c.NextAsync();
        await c.NextAsync();
        await c.NextAsync();
        Assert.Null(await c.TryNextAsync(s_quiet));
        Assert.Equal(3, await t.GetQueueLengthAsync(q, Ct));

        await d0.AckAsync(Ct);
        Delivery d3 = await c.NextAsync();
        Assert.Equal("m3", IdOf(d3));
        Assert.Null(await c.TryNextAsync(s_quiet));
    }

    [Fact]
    public async Task ConsumeAsync_ReportsStarts_RefillsOnceNoneWaitsToStart_WithAllTheRoom()
    {
        Assert.SkipWhen(BrokerCountsPrefetch, "the broker sends as soon as a place is free (basic.qos)");
        ITransport t = await NewAsync();
        string q = Queue();
        await t.PublishAsync("", q, [.. Enumerable.Range(0, 7).Select(i => Message("m" + i))], Ct);

        Consumer c = Consume(t, new ConsumeOptions { Queues = [q], Prefetch = 3, ReportsStarts = true });
        Delivery d0 = await c.NextAsync();
        Delivery d1 = await c.NextAsync();
        Delivery d2 = await c.NextAsync();

        // Two places free, but d2 still waits to be started: no take yet (the quarter rule would have taken by now, see
        // ConsumeAsync_Prefetch3_HoldsThreeUntilOneIsAcked).
        await d0.AckAsync(Ct);
        await d1.AckAsync(Ct);
        Assert.Null(await c.TryNextAsync(s_quiet));
        Assert.Equal(4, await t.GetQueueLengthAsync(q, Ct));

        // Started and still held (a late ack): the window refills with both free places at once.
        d2.Started();
        Assert.Equal(["m3", "m4"], [IdOf(await c.NextAsync()), IdOf(await c.NextAsync())]);
        Assert.Null(await c.TryNextAsync(s_quiet));
        Assert.Equal(2, await t.GetQueueLengthAsync(q, Ct));
    }

    [Fact]
    public async Task AckAsync_Message_IsGoneForEveryone()
    {
        ITransport t = await NewAsync();
        string q = Queue();
        await t.PublishAsync("", q, [Message("m1")], Ct);
        Consumer c = Consume(t, 2, q);
        Delivery d = await c.NextAsync();

        await d.AckAsync(Ct);
        await d.AckAsync(Ct); // a second settle is ignored
        await c.DisposeAsync();
        await t.DisposeAsync();

        ITransport other = await NewAsync();
        Assert.Equal(0, await other.GetQueueLengthAsync(q, Ct));
        Assert.Null(await Consume(other, 2, q).TryNextAsync(s_quiet));
    }

    [Fact]
    public async Task RejectAsync_Requeue_RedeliversWithRedeliveredTrue()
    {
        ITransport t = await NewAsync();
        string q = Queue();
        await t.PublishAsync("", q, [Message("m1"), Message("m2")], Ct);
        Consumer c = Consume(t, 1, q);
        Delivery first = await c.NextAsync();
        Assert.Equal("m1", IdOf(first));
        Assert.False(first.Redelivered);

        await first.RejectAsync(requeue: true, Ct);
        Delivery next = await c.NextAsync();
        await next.AckAsync(Ct);
        Delivery after = await c.NextAsync();
        await after.AckAsync(Ct);

        Delivery again = IdOf(next) == "m1" || RequeuedComesFirst ? next : after;
        Delivery second = again == next ? after : next;
        Assert.Equal(("m1", true), (IdOf(again), again.Redelivered));
        Assert.Equal(("m2", false), (IdOf(second), second.Redelivered));
        Assert.Null(await c.TryNextAsync(s_quiet));
    }

    [Fact]
    public async Task RejectAsync_WithoutRequeue_DropsMessage()
    {
        ITransport t = await NewAsync();
        string q = Queue();
        await t.PublishAsync("", q, [Message("m1")], Ct);
        Consumer c = Consume(t, 1, q);

        await (await c.NextAsync()).RejectAsync(requeue: false, Ct);

        Assert.Null(await c.TryNextAsync(s_quiet));
        Assert.Equal(0, await t.GetQueueLengthAsync(q, Ct));
    }

    [Fact]
    public async Task DisposeAsync_WithHeldDeliveries_ReturnsThemToTheQueue()
    {
        ITransport t = await NewAsync();
        string q = Queue();
        await t.PublishAsync("", q, [Message("m1"), Message("m2"), Message("m3")], Ct);
        Consumer c = Consume(t, 2, q);
        Delivery d1 = await c.NextAsync();
        await c.NextAsync();
        await d1.AckAsync(Ct);
        await c.NextAsync();
        await c.DisposeAsync();

        await t.DisposeAsync();
        ITransport other = await NewAsync(new TransportSetup(Peer: true));
        Consumer c2 = Consume(other, 5, q);
        Delivery r1 = await c2.NextAsync();
        Delivery r2 = await c2.NextAsync();

        Assert.Equal(["m2", "m3"], new[] { IdOf(r1), IdOf(r2) }.Order());
        Assert.True(r1.Redelivered);
        Assert.True(r2.Redelivered);
        Assert.Null(await c2.TryNextAsync(s_quiet));
    }

    [Fact]
    public async Task ConsumeAsync_TwoConsumersOnOneStore_DeliverEachMessageExactlyOnce()
    {
        const int count = 1000;
        ITransport a = await NewAsync();
        ITransport b = await NewAsync(new TransportSetup(Peer: true));
        string q = Queue();
        var seen = new ConcurrentDictionary<string, int>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(30));
        async Task<int> RunAsync(ITransport t)
        {
            int mine = 0;
            try
            {
                await foreach (Delivery d in t.ConsumeAsync(new ConsumeOptions { Queues = [q], Prefetch = 16 }, stop.Token))
                {
                    seen.AddOrUpdate(IdOf(d), 1, (_, n) => n + 1);
                    mine++;
                    await d.AckAsync(Ct);
                    if (seen.Count == count)
                    {
                        await stop.CancelAsync();
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }

            return mine;
        }

        Task<int> ra = RunAsync(a), rb = RunAsync(b);
        await Task.WhenAll(Enumerable.Range(0, 20).Select(batch =>
            (batch % 2 == 0 ? a : b).PublishAsync("", q, [.. Enumerable.Range(batch * 50, 50).Select(i => Message("m" + i))], Ct).AsTask()));
        int[] split = await Task.WhenAll(ra, rb);

        Assert.Equal(count, seen.Count);
        Assert.All(seen, kv => Assert.Equal(1, kv.Value));
        Assert.Equal(count, split.Sum());
    }

    [Fact]
    public async Task VisibilityTimeout_ConsumerDied_MessageIsDeliveredAgain()
    {
        TimeSpan timeout = TimeSpan.FromSeconds(1);
        ITransport dying = await NewAsync(new TransportSetup(Peer: true, VisibilityTimeout: timeout));
        ITransport live = await NewAsync(new TransportSetup(VisibilityTimeout: timeout));
        string q = Queue();
        await live.PublishAsync("", q, [Message("m1")], Ct);
        Consumer doomed = Consume(dying, 1, q);
        Assert.Equal("m1", IdOf(await doomed.NextAsync()));

        await KillAsync(dying);
        Consumer survivor = Consume(live, 1, q);

        if (!RedeliversAtOnceWhenConsumerDies)
        {
            Assert.Null(await survivor.TryNextAsync(timeout / 2));
        }

        Delivery again = await survivor.NextAsync();
        Assert.Equal("m1", IdOf(again));
        Assert.True(again.Redelivered);
    }

    [Fact]
    public async Task VisibilityTimeout_ConsumerAlive_HeldMessageIsNotDeliveredAgain()
    {
        TimeSpan timeout = TimeSpan.FromSeconds(1);
        ITransport holder = await NewAsync(new TransportSetup(VisibilityTimeout: timeout));
        ITransport other = await NewAsync(new TransportSetup(Peer: true, VisibilityTimeout: timeout));
        string q = Queue();
        await holder.PublishAsync("", q, [Message("m1")], Ct);
        Delivery held = await Consume(holder, 1, q).NextAsync();

        Consumer rival = Consume(other, 1, q);
        Assert.Null(await rival.TryNextAsync(timeout * 3.5));

        await held.AckAsync(Ct);
        Assert.Null(await rival.TryNextAsync(timeout * 1.5));
    }

    [Fact]
    public async Task GetQueueLengthAndPurge_CountOnlyReadyMessages()
    {
        ITransport t = await NewAsync();
        string q = Queue();
        await t.PublishAsync("", q, [.. Enumerable.Range(0, 5).Select(i => Message("m" + i))], Ct);
        Assert.Equal(5, await t.GetQueueLengthAsync(q, Ct));
        Delivery held = await Consume(t, 1, q).NextAsync();

        Assert.Equal(4, await t.GetQueueLengthAsync(q, Ct));
        Assert.Equal(4, await t.PurgeAsync(q, Ct));
        Assert.Equal(0, await t.GetQueueLengthAsync(q, Ct));
        Assert.Equal(0, await t.GetQueueLengthAsync(Queue(), Ct));
        await held.AckAsync(Ct);
    }

    [Fact]
    public async Task PublishAsync_NamedDirectExchange_RoutesByBinding()
    {
        ITransport t = await NewAsync();
        string q = Queue();
        await t.DeclareQueueAsync(new QueueDeclaration(q, "ex-" + q, "key-" + q), Ct);

        await t.PublishAsync("ex-" + q, "key-" + q, [Message("bound")], Ct);
        await t.PublishAsync("ex-" + q, "key-" + q, [Message("bound-again")], Ct);

        Consumer c = Consume(t, 4, q);
        Delivery d1 = await c.NextAsync();
        Delivery d2 = await c.NextAsync();
        Assert.Equal(["bound", "bound-again"], [IdOf(d1), IdOf(d2)]);
        Assert.Equal("key-" + q, d1.Message!.RoutingKey);
        Assert.Equal("ex-" + q, d1.Message.Exchange);
    }

    [Fact]
    public async Task SubscribeAsync_TwoSubscribers_EachGetsEverythingPublishedAfterSubscribing()
    {
        ITransport a = await NewAsync();
        ITransport b = await NewAsync(new TransportSetup(Peer: true));
        string exchange = "fan-" + Guid.NewGuid().ToString("N")[..8];
        var gotA = Channel.CreateUnbounded<string>();
        var gotB = Channel.CreateUnbounded<string>();
        await using IAsyncDisposable subA = await a.SubscribeAsync(exchange, m => gotA.Writer.WriteAsync((string)m.Headers["id"]!), ct: Ct);

        await a.PublishAsync(exchange, "", [Message("before-b")], Ct);
        await using IAsyncDisposable subB = await b.SubscribeAsync(exchange, m => gotB.Writer.WriteAsync((string)m.Headers["id"]!), ct: Ct);
        await a.PublishAsync(exchange, "", [Message("e1"), Message("e2")], Ct);
        await b.PublishAsync(exchange, "", [Message("e3")], Ct);

        Assert.Equal(["before-b", "e1", "e2", "e3"], await ReadAsync(gotA.Reader, 4));
        Assert.Equal(["e1", "e2", "e3"], await ReadAsync(gotB.Reader, 3));
        await Task.Delay(s_quiet, Ct);
        Assert.False(gotA.Reader.TryRead(out _));
        Assert.False(gotB.Reader.TryRead(out _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CatchUpAsync_MessagesPublishedBefore_HaveBeenHandedOverWhenItCompletes(bool prefetchOff)
    {
        ITransport t = await NewAsync();
        if (t is not ICatchUpTransport catchUp)
        {
            Assert.Skip($"{t.GetType().Name} has no catch-up: its control messages do not overtake its tasks");
            return;
        }

        string q = Queue();
        Consumer c = Consume(t, new ConsumeOptions { Queues = [q], Prefetch = 4, CountUntilDone = prefetchOff });
        await t.PublishAsync("", q, [Message("first")], Ct);
        Delivery first = await c.NextAsync();
        await first.AckAsync(Ct);
        first.Done();

        // The consumer is running and waits on the broker: each message published now must be in its hands, not on
        // its way, once the catch-up completes.
        for (int i = 0; i < 20; i++)
        {
            await t.PublishAsync("", q, [Message("m" + i)], Ct);
            await catchUp.CatchUpAsync(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct);
            Assert.True(c.TryTake(out Delivery? d), $"message {i} was not handed over when the catch-up completed");
            Assert.Equal("m" + i, IdOf(d!));
            await d!.AckAsync(Ct);
            d.Done();
        }
    }

    [Fact]
    public async Task ConsumeAsync_Cancelled_Ends()
    {
        ITransport t = await NewAsync();
        using var cts = new CancellationTokenSource();
        Task run = Task.Run(async () =>
        {
            try
            {
                await foreach (Delivery d in t.ConsumeAsync(new ConsumeOptions { Queues = [Queue()] }, cts.Token))
                {
                    await d.AckAsync();
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, Ct);
        await Task.Delay(200, Ct);

        await cts.CancelAsync();

        await run.WaitAsync(TimeSpan.FromSeconds(5), Ct);
    }

    private static async Task<string[]> ReadAsync(ChannelReader<string> reader, int count)
    {
        var got = new List<string>();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(s_wait);
        while (got.Count < count)
        {
            got.Add(await reader.ReadAsync(timeout.Token));
        }

        return [.. got];
    }

    public async ValueTask DisposeAsync()
    {
        foreach (Consumer c in _consumers)
        {
            await c.DisposeAsync();
        }

        foreach (ITransport t in _transports)
        {
            await t.DisposeAsync();
        }

        await DisposeStoreAsync();
        GC.SuppressFinalize(this);
    }

    /// <summary>Deletes the test's store, after every transport is disposed.</summary>
    protected virtual ValueTask DisposeStoreAsync() => ValueTask.CompletedTask;

    /// <summary>Runs a consume loop in the background and hands out what it yields.</summary>
    private sealed class Consumer : IAsyncDisposable
    {
        private readonly Channel<Delivery> _got = Channel.CreateUnbounded<Delivery>();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public Consumer(ITransport transport, ConsumeOptions options)
        {
            _loop = Task.Run(async () =>
            {
                try
                {
                    await foreach (Delivery d in transport.ConsumeAsync(options, _stop.Token))
                    {
                        await _got.Writer.WriteAsync(d);
                    }
                }
                catch (OperationCanceledException)
                {
                }
                catch (ObjectDisposedException)
                {
                }
                finally
                {
                    _got.Writer.TryComplete();
                }
            });
        }

        public bool TryTake(out Delivery? delivery) => _got.Reader.TryRead(out delivery);

        public async Task<Delivery> NextAsync() =>
            await TryNextAsync(s_wait) ?? throw new TimeoutException($"No delivery within {s_wait.TotalSeconds} s.");

        public async Task<Delivery?> TryNextAsync(TimeSpan within)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(within);
            try
            {
                return await _got.Reader.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
            {
                return null;
            }
            catch (ChannelClosedException)
            {
                return null;
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_stop.IsCancellationRequested)
            {
                await _stop.CancelAsync();
                await _loop.WaitAsync(TimeSpan.FromSeconds(5));
            }
        }
    }
}
