using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Celeriac.RabbitMQ;

/// <summary>
/// One <see cref="ITransport.ConsumeAsync"/>: a channel of its own with a consumer on each queue, and what keeps
/// deferred (ETA) deliveries from hurting anyone.
/// <list type="bullet">
/// <item>The prefetch grows by one per deferred delivery, as Celery does for each ETA task: on classic queues by raising
/// the channel's global <c>basic.qos</c>; quorum queues refuse a global qos, and with several queues each consumer also
/// has a share of the prefetch of its own, which AMQP fixes when the consumer is created: so there a consumer that holds
/// a deferred delivery is replaced by a fresh one (a cancelled consumer keeps its deliveries, and a new one starts with a
/// full window).</item>
/// <item>A flood of deferred deliveries (a whole window in a row) would come in at one window per round trip: while it
/// lasts the global qos lets the broker send ahead, up to 8 windows more, so a worker may briefly hold that many extra
/// immediate tasks right after such a flood.</item>
/// <item>A deferred delivery held for half of the broker's <c>consumer_timeout</c> is parked: a copy goes to the back of
/// its queue (confirmed) and the original is acked, so the broker never closes the channel over it (celery#6760).</item>
/// <item>When the channel is lost, every delivery the worker has not started is withdrawn, because the broker gives the
/// message to a consumer again; a channel the broker closed while the connection lives ends the consume, so the
/// worker consumes again on a new one.</item>
/// <item>Prefetch off (<see cref="ConsumeOptions.CountUntilDone"/>): AMQP's qos cannot express it, because an early ack
/// frees a place the worker cannot use yet (celery#1933, #6500), and a qos of 0 means no limit. So nothing is consumed:
/// messages are taken one by one with <c>basic.get</c> while the worker has a free slot; while the queues are empty
/// the worker polls again after 1 ms, doubling the wait up to 100 ms.</item>
/// <item>A catch-up (<see cref="CatchUpAsync"/>) proves that every delivery the broker sent before it has been handed
/// over: the client dispatches a channel's deliveries and its consumers' <c>basic.consume-ok</c> in the order they came,
/// so a consumer started on the transport's empty fence queue is told it is on only after the deliveries before.</item>
/// </list>
/// </summary>
internal sealed class AmqpConsumer : IAsyncDisposable
{
    private static readonly TimeSpan s_pollMin = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan s_pollMax = TimeSpan.FromMilliseconds(100);
    private readonly RabbitMqTransport _transport;
    private readonly IChannel _channel;
    private readonly string[] _queues;
    private readonly int _prefetch;
    private readonly bool _perConsumer;
    private readonly TimeSpan _parkAfter;
    private readonly ILogger _logger;
    private readonly PrefetchWindow? _pullWindow;
    private readonly Channel<Delivery> _ready = Channel.CreateUnbounded<Delivery>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, string> _queueOfTag = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<AmqpDelivery, long> _waiting = new();
    private readonly AsyncEventingBasicConsumer _consumer;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private List<string> _tags = [];
    private Epoch _epoch = new();
    private Task _qos = Task.CompletedTask;
    private int _appliedQos = -1;
    private int _qosAsked;
    private int _deferredRun;
    private int _generation;
    private Task _parker = Task.CompletedTask;
    private Task _puller = Task.CompletedTask;
    private volatile bool _ended;
    private readonly ConsumeCatchUp? _pullCatchUp;
    private readonly Lock _handGate = new();
    private readonly List<(long Target, TaskCompletionSource Met)> _handWaiters = [];
    private long _written;
    private long _handed;
    private int _handWaiting;

    private AmqpConsumer(RabbitMqTransport transport, IChannel channel, string[] queues, ConsumeOptions options, bool perConsumer, TimeSpan parkAfter, ILogger logger)
    {
        _transport = transport;
        _channel = channel;
        _queues = queues;
        _prefetch = Math.Clamp(options.Prefetch, 1, ushort.MaxValue);
        _pullWindow = options.CountUntilDone ? new PrefetchWindow(options) : null;
        _pullCatchUp = _pullWindow is null ? null : new ConsumeCatchUp(_pullWindow);
        _perConsumer = perConsumer;
        _parkAfter = parkAfter;
        _logger = logger;
        _consumer = new AsyncEventingBasicConsumer(channel);
        _consumer.ReceivedAsync += async (_, e) =>
        {
            if (_ready.Writer.TryWrite(Receive(e)))
            {
                Interlocked.Increment(ref _written);
            }
            else
            {
                // This consume has ended (its channel was closed for good, or it stopped): give the message back
                // rather than hold it unacked on a channel nobody reads.
                await RejectQuietlyAsync(e.DeliveryTag).ConfigureAwait(false);
            }
        };
        channel.ChannelShutdownAsync += (_, e) =>
        {
            OnChannelShutdown(e);
            return Task.CompletedTask;
        };
    }

    /// <summary>The deliveries, in arrival order; completes with an error when the broker closed the channel.</summary>
    public ChannelReader<Delivery> Ready => _ready.Reader;

    /// <summary>Opens the channel, sets its prefetch and starts a consumer on each queue (or, with prefetch off, the puller).</summary>
    public static async Task<AmqpConsumer> StartAsync(RabbitMqTransport transport, IConnection connection, string[] queues, ConsumeOptions options, bool perConsumer, TimeSpan parkAfter, ILogger logger, CancellationToken ct)
    {
        IChannel channel = await connection.CreateChannelAsync(cancellationToken: ct).ConfigureAwait(false);
        var consumer = new AmqpConsumer(transport, channel, queues, options, perConsumer, parkAfter, logger);
        if (consumer._pullWindow is not null)
        {
            consumer._puller = consumer.PullLoopAsync(consumer._pullWindow);
            consumer._parker = consumer.ParkLoopAsync();
            return consumer;
        }

        if (consumer.HasPerConsumerLimit)
        {
            // A per-consumer limit, set before the consumers (AMQP applies it to consumers created after): with several
            // queues one channel-wide limit would let the first queue to get credit take it all; quorum queues have
            // no channel-wide limit at all.
            int share = (consumer._prefetch + queues.Length - 1) / queues.Length;
            await channel.BasicQosAsync(0, (ushort)Math.Clamp(share, 1, ushort.MaxValue), global: false, ct).ConfigureAwait(false);
        }

        if (!perConsumer)
        {
            await consumer.ApplyQosAsync().ConfigureAwait(false);
        }

        await consumer.ConsumeAllAsync(ct).ConfigureAwait(false);
        consumer._parker = consumer.ParkLoopAsync();
        return consumer;
    }

    /// <summary>The consumer channel (acks of deliveries are sent on it).</summary>
    public IChannel ConsumerChannel => _channel;

    private async Task ConsumeAllAsync(CancellationToken ct)
    {
        var tags = new List<string>(_queues.Length);
        foreach (string queue in _queues)
        {
            // The consumer tag is ours, so deliveries arriving before basic.consume-ok still name their queue.
            string tag = "celeriac-" + Guid.NewGuid().ToString("N");
            _queueOfTag[tag] = queue;
            tags.Add(await _channel.BasicConsumeAsync(queue, autoAck: false, tag, _consumer, ct).ConfigureAwait(false));
        }

        List<string> old = Interlocked.Exchange(ref _tags, tags);
        await CancelAsync(old).ConfigureAwait(false);
    }

    private async Task CancelAsync(List<string> tags)
    {
        foreach (string tag in tags)
        {
            try
            {
                await _channel.BasicCancelAsync(tag, cancellationToken: CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is global::RabbitMQ.Client.Exceptions.AlreadyClosedException or global::RabbitMQ.Client.Exceptions.OperationInterruptedException or OperationCanceledException)
            {
                // The channel is gone: the broker has returned its unacked messages already.
            }
        }
    }

    private AmqpDelivery Receive(BasicDeliverEventArgs e)
    {
        string queue = _queueOfTag.GetValueOrDefault(e.ConsumerTag, e.RoutingKey);
        return new AmqpDelivery(this, e.DeliveryTag, queue, RabbitMqTransport.MessageOf(e), e.Redelivered, Volatile.Read(ref _epoch), Volatile.Read(ref _generation));
    }

    /// <summary>Prefetch off: takes a message with <c>basic.get</c> each time the worker has a free slot, queues in turn.</summary>
    private async Task PullLoopAsync(PrefetchWindow window)
    {
        TimeSpan idle = s_pollMin;
        int turn = 0;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await window.WaitForRoomAsync(_stop.Token).ConfigureAwait(false);
                long take = _pullCatchUp!.BeginTake(out Task asked);
                bool took = false;
                for (int i = 0; i < _queues.Length && window.Free > 0; i++)
                {
                    string queue = _queues[(turn + i) % _queues.Length];
                    Epoch epoch = Volatile.Read(ref _epoch);
                    BasicGetResult? got;
                    try
                    {
                        got = await _channel.BasicGetAsync(queue, autoAck: false, _stop.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is global::RabbitMQ.Client.Exceptions.AlreadyClosedException or global::RabbitMQ.Client.Exceptions.OperationInterruptedException)
                    {
                        if (_ended)
                        {
                            return; // The broker closed the channel: the consume has ended.
                        }

                        // The connection is being recovered by the client: try again soon.
                        await Task.Delay(TimeSpan.FromMilliseconds(200), _stop.Token).ConfigureAwait(false);
                        break;
                    }

                    if (got is null)
                    {
                        continue;
                    }

                    window.Take(1);
                    took = true;
                    var delivery = new AmqpDelivery(this, got.DeliveryTag, queue, RabbitMqTransport.MessageOf(got), got.Redelivered, epoch, 0, window);
                    if (!_ready.Writer.TryWrite(delivery))
                    {
                        await RejectQuietlyAsync(got.DeliveryTag).ConfigureAwait(false);
                        return;
                    }

                    Interlocked.Increment(ref _written);
                }

                turn++;
                _pullCatchUp.Met(take);
                if (took)
                {
                    idle = s_pollMin;
                }
                else if (!_pullCatchUp.Pending)
                {
                    // A catch-up asked meanwhile wakes the wait: its pass must not wait out the poll.
                    await Task.WhenAny(Task.Delay(idle, _stop.Token), asked).ConfigureAwait(false);
                    _stop.Token.ThrowIfCancellationRequested();
                    idle = TimeSpan.FromTicks(Math.Min(idle.Ticks * 2, s_pollMax.Ticks));
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Stopped.
        }
        finally
        {
            _pullCatchUp!.Ended();
        }
    }

    /// <summary>
    /// Completes once every delivery the broker had sent this consume when it was called (with prefetch off: a
    /// <c>basic.get</c> pass begun after it was called found) has been handed over by the consume loop, or once this
    /// consume has ended. Bounded by the caller.
    /// </summary>
    public async Task CatchUpAsync(CancellationToken ct)
    {
        if (_ended || _stop.IsCancellationRequested)
        {
            return;
        }

        if (_pullCatchUp is not null)
        {
            await _pullCatchUp.WaitAsync(ct).ConfigureAwait(false);
        }
        else
        {
            await FenceAsync(ct).ConfigureAwait(false);
        }

        long target = Interlocked.Read(ref _written);
        TaskCompletionSource met;
        lock (_handGate)
        {
            // Counted before _handed is read (both full fences), so that HandedOver either sees this waiter or has
            // written what this reads.
            met = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _handWaiters.Add((target, met));
            Interlocked.Exchange(ref _handWaiting, _handWaiters.Count);
            if (Interlocked.Read(ref _handed) >= target || _ended || _stop.IsCancellationRequested)
            {
                _handWaiters.RemoveAt(_handWaiters.Count - 1);
                Interlocked.Exchange(ref _handWaiting, _handWaiters.Count);
                return;
            }
        }

        await met.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The consume loop has handed over its first <paramref name="count"/> deliveries and come back for more.</summary>
    public void HandedOver(long count)
    {
        Interlocked.Exchange(ref _handed, count);
        if (Volatile.Read(ref _handWaiting) == 0)
        {
            return; // The common case, on every delivery: nobody waits (a waiter checks _handed again under the lock).
        }

        lock (_handGate)
        {
            for (int i = _handWaiters.Count - 1; i >= 0; i--)
            {
                if (_handWaiters[i].Target <= count)
                {
                    _handWaiters[i].Met.TrySetResult();
                    _handWaiters.RemoveAt(i);
                }
            }

            Volatile.Write(ref _handWaiting, _handWaiters.Count);
        }
    }

    private void ReleaseCatchUps()
    {
        lock (_handGate)
        {
            foreach ((_, TaskCompletionSource met) in _handWaiters)
            {
                met.TrySetResult();
            }

            _handWaiters.Clear();
            Volatile.Write(ref _handWaiting, 0);
        }
    }

    /// <summary>
    /// A round trip through this channel's consumer dispatcher: a consumer on the transport's fence queue (always empty)
    /// hears its <c>basic.consume-ok</c> after the client has dispatched every delivery that came before it.
    /// </summary>
    private async Task FenceAsync(CancellationToken ct)
    {
        string queue = await _transport.FenceQueueAsync(ct).ConfigureAwait(false);
        var fence = new FenceConsumer(_channel);
        string tag;
        try
        {
            tag = await _channel.BasicConsumeAsync(queue, autoAck: true, "celeriac-fence-" + Guid.NewGuid().ToString("N"), fence, ct).ConfigureAwait(false);
        }
        catch (global::RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            // The queue is gone (deleted by hand): the broker closed this channel over it, and the next catch-up
            // declares another.
            _transport.ForgetFenceQueue(queue);
            throw;
        }

        try
        {
            await fence.Started.WaitAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            await CancelAsync([tag]).ConfigureAwait(false);
        }
    }

    private sealed class FenceConsumer(IChannel channel) : AsyncDefaultBasicConsumer(channel)
    {
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Started => _started.Task;

        protected override Task OnCancelAsync(string[] consumerTags, CancellationToken cancellationToken = default)
        {
            _started.TrySetResult();
            return Task.CompletedTask;
        }

        public override async Task HandleBasicConsumeOkAsync(string consumerTag, CancellationToken cancellationToken = default)
        {
            await base.HandleBasicConsumeOkAsync(consumerTag, cancellationToken).ConfigureAwait(false);
            _started.TrySetResult();
        }
    }

    /// <summary>Stops consuming (the channel stays open for acks); deliveries received but not handed out go back to the broker.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);

        // Closed first: the client may hand over a delivery after basic.cancel-ok (its dispatcher runs behind the
        // socket), and one that found the channel still open would sit unacked, unread, until the connection closes.
        _ready.Writer.TryComplete();
        ReleaseCatchUps();
        await CancelAsync(Interlocked.Exchange(ref _tags, [])).ConfigureAwait(false);
        while (_ready.Reader.TryRead(out Delivery? leftover))
        {
            await leftover.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
        }

        await _puller.ConfigureAwait(false);
        while (_ready.Reader.TryRead(out Delivery? pulled))
        {
            await pulled.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
        }

        await _parker.ConfigureAwait(false);
        _stop.Dispose();
    }

    private void OnDeferred(AmqpDelivery delivery)
    {
        _waiting[delivery] = Stopwatch.GetTimestamp();
        if (_pullWindow is not null)
        {
            return; // basic.get ignores the qos; the window has freed the delivery's place itself.
        }

        Interlocked.Increment(ref _deferredRun);
        if (!_perConsumer)
        {
            AskQos();
        }

        // A per-consumer limit is fixed when the consumer is created: only a fresh consumer gets a fresh window.
        if (HasPerConsumerLimit && delivery.Generation == Volatile.Read(ref _generation))
        {
            Chain(ReconsumeAsync);
        }
    }

    /// <summary>Whether each consumer has a limit of its own (quorum queues, or a share of the prefetch per queue).</summary>
    private bool HasPerConsumerLimit => _perConsumer || _queues.Length > 1;

    private void OnDeferredDone(AmqpDelivery delivery)
    {
        if (_waiting.TryRemove(delivery, out _) && !_perConsumer && _pullWindow is null)
        {
            AskQos();
        }
    }

    /// <summary>A delivery that was not deferred has been settled: a run of deferred ones has ended.</summary>
    private void OnSettled()
    {
        if (Volatile.Read(ref _deferredRun) != 0 && Interlocked.Exchange(ref _deferredRun, 0) >= _prefetch && !_perConsumer && _pullWindow is null)
        {
            AskQos(); // Its qos let the broker send ahead: no longer.
        }
    }

    /// <summary>Chains one qos change, unless one is chained and not begun yet (it will read the latest counts).</summary>
    private void AskQos()
    {
        if (Interlocked.Exchange(ref _qosAsked, 1) == 0)
        {
            Chain(ApplyQosAsync);
        }
    }

    /// <summary>Runs qos changes and consumer swaps one after another, in the order they were asked for.</summary>
    private void Chain(Func<Task> step)
    {
        lock (_gate)
        {
            _qos = _qos.ContinueWith(_ => step(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();
        }
    }

    private Task ApplyQosAsync() => Guard(async () =>
    {
        Volatile.Write(ref _qosAsked, 0);

        // One more per deferred delivery still held (those waiting are exactly the unsettled deferred ones). A whole
        // window deferred in a row is a flood of ETA tasks, which one place per deferred delivery lets in at one window
        // per round trip (10,000 took 12 s on a busy machine): then the broker may send ahead, as many as the run so
        // far, up to 8 windows, until a delivery that was not deferred is settled.
        int run = Volatile.Read(ref _deferredRun);
        int ahead = run >= _prefetch ? Math.Min(run, 8 * _prefetch) : 0;
        int wanted = Math.Clamp(_prefetch + _waiting.Count + ahead, 1, ushort.MaxValue);
        if (wanted != _appliedQos && _channel.IsOpen)
        {
            await _channel.BasicQosAsync(0, (ushort)wanted, global: true).ConfigureAwait(false);
            _appliedQos = wanted;
        }
    });

    private Task ReconsumeAsync() => Guard(async () =>
    {
        if (_stop.IsCancellationRequested || !_channel.IsOpen || !_waiting.Keys.Any(d => d.Generation == Volatile.Read(ref _generation)))
        {
            return; // An earlier swap already covered it.
        }

        Interlocked.Increment(ref _generation);
        await ConsumeAllAsync(CancellationToken.None).ConfigureAwait(false);
    });

    private async Task Guard(Func<Task> step)
    {
        try
        {
            await step().ConfigureAwait(false);
        }
        catch (Exception e) when (e is global::RabbitMQ.Client.Exceptions.AlreadyClosedException or global::RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            Log.QosFailed(_logger, e);
        }
    }

    private async Task ParkLoopAsync()
    {
        TimeSpan every = TimeSpan.FromTicks(Math.Clamp(_parkAfter.Ticks / 4, TimeSpan.FromMilliseconds(100).Ticks, TimeSpan.FromSeconds(30).Ticks));
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await Task.Delay(every, _stop.Token).ConfigureAwait(false);
                foreach ((AmqpDelivery delivery, long since) in _waiting)
                {
                    if (Stopwatch.GetElapsedTime(since) >= _parkAfter && !_stop.IsCancellationRequested)
                    {
                        await ParkAsync(delivery).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Stopped.
        }
    }

    /// <summary>Sends a copy of a long-deferred delivery to the back of its queue, then acks the original.</summary>
    private async Task ParkAsync(AmqpDelivery delivery)
    {
        if (!delivery.Withdraw())
        {
            return; // The worker has just started it.
        }

        OnDeferredDone(delivery);
        try
        {
            await _transport.PublishAsync("", delivery.Queue, [delivery.Message! with { Expiration = null }], _stop.Token).ConfigureAwait(false);
            await _channel.BasicAckAsync(delivery.Tag, multiple: false).ConfigureAwait(false);
            Log.Parked(_logger, delivery.Queue, (int)_parkAfter.TotalSeconds);
        }
        catch (Exception e) when (e is not OperationCanceledException || _stop.IsCancellationRequested)
        {
            // Not parked: the original goes back to the queue instead (or already went, with its channel).
            Log.ParkFailed(_logger, delivery.Queue, e);
            await RejectQuietlyAsync(delivery.Tag).ConfigureAwait(false);
        }
    }

    private void OnChannelShutdown(ShutdownEventArgs e)
    {
        if (e.Initiator == ShutdownInitiator.Application)
        {
            return; // Closed by us: stopping.
        }

        // Whatever the channel held unacked is back in its queue: nothing of it may run here unless already started.
        Epoch lost = Interlocked.Exchange(ref _epoch, new Epoch());
        lost.Lost = true;
        int withdrawn = 0;
        foreach (AmqpDelivery delivery in _waiting.Keys)
        {
            if (delivery.Withdraw())
            {
                OnDeferredDone(delivery);
                withdrawn++;
            }
        }

        Log.ChannelLost(_logger, e.ReplyCode, e.ReplyText, withdrawn);

        // The client recovers the channels of a lost connection by itself (connection-level codes: 320 forced, 5xx),
        // but not a channel the broker closed on its own (a 4xx: consumer timeout, a protocol error): that ends this
        // consume, and the worker consumes again on a new channel.
        if (e.ReplyCode is not (320 or >= 500))
        {
            _ended = true;
            ReleaseCatchUps();
            _ready.Writer.TryComplete(new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"RabbitMQ closed the consumer channel ({e.ReplyCode} {e.ReplyText}); consuming again on a new one.")));
        }
    }

    private async Task RejectQuietlyAsync(ulong tag)
    {
        try
        {
            await _channel.BasicRejectAsync(tag, requeue: true).ConfigureAwait(false);
        }
        catch (Exception e) when (e is global::RabbitMQ.Client.Exceptions.AlreadyClosedException or global::RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            // The channel is gone, and with it the broker's hold on the message.
        }
    }

    /// <summary>Marks deliveries of one life of the channel: a lost channel's deliveries are back with the broker.</summary>
    internal sealed class Epoch
    {
        public volatile bool Lost;
    }

    internal sealed class AmqpDelivery(AmqpConsumer owner, ulong tag, string queue, TransportMessage message, bool redelivered, Epoch epoch, int generation, PrefetchWindow? window = null)
        : Delivery(queue, message, null, redelivered, window)
    {
        public ulong Tag => tag;

        public int Generation => generation;

        protected override bool IsStale => epoch.Lost;

        public bool Withdraw() => TryWithdraw();

        protected override void OnDeferred() => owner.OnDeferred(this);

        protected override async ValueTask SettleAsync(bool? requeue, CancellationToken ct)
        {
            try
            {
                if (requeue is null)
                {
                    await owner._channel.BasicAckAsync(tag, multiple: false, ct).ConfigureAwait(false);
                }
                else
                {
                    await owner._channel.BasicRejectAsync(tag, requeue.Value, ct).ConfigureAwait(false);
                }
            }
            finally
            {
                if (IsDeferred)
                {
                    owner.OnDeferredDone(this);
                }
                else
                {
                    owner.OnSettled();
                }
            }
        }
    }
}
