using System.Collections.Concurrent;
using System.Threading.Channels;
using Celeriac.Concurrency;
using Celeriac.Diagnostics;
using Celeriac.Protocol;
using Celeriac.Results;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;

namespace Celeriac.Worker;

/// <summary>
/// Consumes the app's queues and runs their tasks: a pipeline of small parts that this class wires together. The
/// consumer takes deliveries into the prefetch window (a bounded channel); a slot takes each one, the intake decodes it,
/// the request registry tracks it (reserved, scheduled for its ETA or rate limit, active), the pool runs it and returns
/// its outcome as a value, the post-run steps act on that outcome (the result is stored first), and the message is
/// settled (ack, reject, requeue). Bad input is logged and dropped, never fatal.
/// </summary>
public sealed partial class CeleriacWorker
{
    private readonly CeleriacApp _app;
    private readonly ILogger _logger;
    private readonly ILogger _lifecycle;

    /// <summary>
    /// The log category of the worker's ready and warm-shutdown lines (Information, as a .NET host's own), apart from
    /// <c>Celeriac.Worker</c> so that a console at Celery's WARNING level can still let them through.
    /// </summary>
    public const string LifecycleCategory = "Celeriac.Worker.Lifecycle";
    private readonly string _node;
    private volatile string[] _queues;
    private readonly int _prefetch;
    private readonly bool _prefetchOff;
    private long _processed;
    private readonly ConcurrentDictionary<Task, byte> _timers = new();
    private readonly ConcurrentDictionary<Task, byte> _writes = new();
    private int _pendingWrites;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Control.RevokedTasks _revoked;
    private readonly Lock _stateDbGate = new();
    private readonly RateLimiter<WorkerRequest> _rateLimits;
    private readonly RequestRegistry _registry = new();
    private readonly TaskRunner _runner;
    private readonly ResultDocuments _documents;
    private readonly StoreResultStep _store;
    private readonly RequestIntake _intake;
    private readonly IPostRunStep[] _steps;
    private readonly ITaskPool _pool;
    private readonly Autoscaler? _autoscaler;
    private volatile bool _softShutdownCut;

    /// <summary>Creates a worker for an app; its options give the queues, pool, concurrency and prefetch.</summary>
    public CeleriacWorker(CeleriacApp app)
        : this(app, null)
    {
    }

    /// <summary>Creates a worker that also runs <paramref name="steps"/> after each task (see <see cref="IPostRunStep"/>).</summary>
    public CeleriacWorker(CeleriacApp app, IEnumerable<IPostRunStep>? steps)
    {
        ArgumentNullException.ThrowIfNull(app);
        _app = app;
        _logger = app.LoggerFactory.CreateLogger("Celeriac.Worker");
        _lifecycle = app.LoggerFactory.CreateLogger(LifecycleCategory);
        CeleriacOptions o = app.Options;
        o.Validate();
        _node = o.EffectiveNodeName;
        _queues = [.. o.EffectiveQueues];
        int maxConcurrency = o.Concurrency;
        int concurrency = o.Concurrency;
        if (CeleriacOptions.TryParseAutoscale(o.Autoscale, out int max, out int min))
        {
            maxConcurrency = max;
            concurrency = min;
        }

        _pool = TaskPools.Create(app, concurrency, _logger);
        if (_pool.Name == PoolNames.Solo)
        {
            maxConcurrency = 1;
        }
        else if (o.Autoscale is not null)
        {
            _autoscaler = new Autoscaler(this, max, min, o.AutoscaleKeepAlive, app.Time, _logger);
        }

        MaxConcurrency = maxConcurrency;
        _slotTarget = _pool.Size;
        _prefetchOff = o.DisablePrefetch;
        _prefetch = o.DisablePrefetch ? maxConcurrency : o.PrefetchMultiplier == 0 ? 65_536 : Math.Max(1, maxConcurrency * o.PrefetchMultiplier);
        _revoked = new Control.RevokedTasks(app.Time);
        _rateLimits = new RateLimiter<WorkerRequest>(app.Time);
        _rateLimits.Validate(app.Tasks);
        _runner = new TaskRunner(app, _node);
        _documents = new ResultDocuments(app, _node);
        _store = new StoreResultStep(app.ResultBackend, _documents, _logger);

        // As Celery's worker: worker events unless --without-heartbeat, task events only with -E.
        _events = o.TaskEvents || !o.WithoutHeartbeat ? new Events.EventDispatcher(app, _node) : null;
        _taskEvents = o.TaskEvents ? _events : null;
        _intake = new RequestIntake(app, this, _store, _documents, _logger, () => _taskEvents);

        // The events step is always there, so that remote control may turn task events on; off, it only returns.
        IPostRunStep[] all = [new WorkflowStep(app, _logger), _store, new ChordStep(app, _logger), new EventsStep(() => _taskEvents), new TelemetryStep(app.MessagingSystem), .. steps ?? []];
        _steps = [.. all.OrderBy(static s => s.Order)];
        CanvasBuiltins.Register(app);
    }

    /// <summary>The worker's node name.</summary>
    public string NodeName => _node;

    /// <summary>The queues it consumes now (remote control's <c>add_consumer</c> and <c>cancel_consumer</c> change them).</summary>
    public IReadOnlyList<string> Queues => _queues;

    /// <summary>How many tasks it runs at once now (the pool's size; autoscale and remote control change it).</summary>
    public int Concurrency => _pool.Size;

    /// <summary>The most tasks it may run at once (autoscale's MAX, else the concurrency at start).</summary>
    public int MaxConcurrency { get; private set; }

    /// <summary>The pool that runs its tasks.</summary>
    public ITaskPool Pool => _pool;

    /// <summary>Completes when the worker consumes.</summary>
    public Task Ready => _ready.Task;

    /// <summary>The task ids this worker was told to revoke (by remote control or in code).</summary>
    public Control.RevokedTasks Revoked => _revoked;

    /// <summary>Tasks finished so far.</summary>
    public long Processed => Interlocked.Read(ref _processed);

    /// <summary>The requests it holds in <paramref name="state"/> (Celery's <c>inspect reserved / scheduled / active</c>).</summary>
    public IReadOnlyList<RequestInfo> GetRequests(RequestState state) => _registry.Snapshot(state, _node);

    /// <summary>
    /// Runs until <paramref name="stop"/> (warm shutdown: stop consuming, finish running tasks, return the
    /// prefetched ones) or <paramref name="abort"/> (cold shutdown: also cancel running tasks and return
    /// late-acked ones). With <see cref="CeleriacOptions.SoftShutdownTimeout"/>, a warm shutdown turns cold after it.
    /// </summary>
    public async Task RunAsync(CancellationToken stop, CancellationToken abort = default)
    {
        WorkerTelemetry.Register(this);
        try
        {
            await RunCoreAsync(stop, abort).ConfigureAwait(false);
        }
        finally
        {
            WorkerTelemetry.Unregister(this);
        }
    }

    /// <summary>Celery's <c>broker_connection_max_retries</c> on a worker's start (kombu's ensure_connection).</summary>
    internal const int StartupConnectRetries = 100;

    /// <summary>
    /// Declares the worker's queues, the first time it reaches the broker. As Celery's
    /// <c>broker_connection_retry_on_startup</c>: a broker that is not up yet (containers starting together) is tried
    /// again every 2, 4, ... 30 s, 100 times, with one line per try; false when the stop came first.
    /// </summary>
    private async Task<bool> DeclareQueuesAsync(ITransport transport, CancellationToken stop, CancellationToken abort)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                foreach (string q in _queues)
                {
                    await transport.DeclareQueueAsync(_app.Options.DeclarationOf(q), abort).ConfigureAwait(false);
                }

                return true;
            }
            catch (BrokerUnreachableException ex) when (attempt < StartupConnectRetries && !abort.IsCancellationRequested)
            {
                if (stop.IsCancellationRequested)
                {
                    return false;
                }

                TimeSpan wait = TimeSpan.FromSeconds(Math.Min(2 * attempt, 30));
                Log.CannotConnect(_logger, ex.Url, ex.InnerException?.Message ?? ex.Message, wait.TotalSeconds, attempt, StartupConnectRetries);
                try
                {
                    await Task.Delay(wait, _app.Time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return false;
                }
            }
        }
    }

    private async Task RunCoreAsync(CancellationToken stop, CancellationToken abort)
    {
        using var linkedAbort = CancellationTokenSource.CreateLinkedTokenSource(abort);
        _startedAt = _app.Time.GetUtcNow();
        LoadStateDb();
        _app.Signals.OnWorkerInit(this, new WorkerSignalEventArgs(this));
        if (PoolNames.IsGreen(_app.Options.Pool))
        {
            Log.PoolAlias(_logger, _app.Options.Pool);
        }

        ITransport transport = _app.Transport;
        if (!await DeclareQueuesAsync(transport, stop, abort).ConfigureAwait(false))
        {
            return;
        }

        await _pool.StartAsync(abort).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposePool = _pool.ConfigureAwait(false);
        var window = Channel.CreateBounded<WorkerRequest>(new BoundedChannelOptions(_prefetch)
        {
            SingleWriter = false,
            SingleReader = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
        using var remoteStop = new CancellationTokenSource();
        _requestStop = remoteStop.Cancel;
        using var stopOrAbort = CancellationTokenSource.CreateLinkedTokenSource(stop, abort, remoteStop.Token);
        _slotContext = new SlotContext(window, stopOrAbort.Token, linkedAbort.Token);
        StartSlots();

        // Remote control (kombu's pidbox): Celery's inspect and control commands, from Celery's and Celeriac's clients.
        IAsyncDisposable control = await transport.SubscribeAsync(
            Control.Mailbox.Exchange, m => OnControlAsync(transport, m), new SubscriberBinding(_node + "." + Control.Mailbox.Exchange), abort).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable unsubscribe = control.ConfigureAwait(false);
        await MingleAsync(abort).ConfigureAwait(false);

        // Celery's gossip: every worker listens to the other workers' events, so its queue is part of the topology
        // Celery users see (celeryev.<uuid> bound to worker.#). Celeriac takes no part in gossip yet and drops them.
        IAsyncDisposable gossip = await transport.SubscribeAsync(
            "celeryev", static _ => ValueTask.CompletedTask, new SubscriberBinding("celeryev." + Guid.NewGuid().ToString(), "worker.#"), abort).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable unsubscribeGossip = gossip.ConfigureAwait(false);
        // Celery's Heart: worker-online as the consumer starts, then a heartbeat every interval until the stop.
        await SendWorkerEventAsync("worker-online", abort).ConfigureAwait(false);
        using var heartStop = CancellationTokenSource.CreateLinkedTokenSource(stopOrAbort.Token);
        using var endHeart = new CancelOnExit(heartStop);
        Task heart = _events is null || _app.Options.WithoutHeartbeat ? Task.CompletedTask : HeartAsync(heartStop.Token);
        Task consumer = ConsumeAsync(transport, window.Writer, stopOrAbort.Token);
        Task autoscale = _autoscaler?.RunAsync(stopOrAbort.Token) ?? Task.CompletedTask;
        Log.WorkerReady(_lifecycle, _node);
        _ready.TrySetResult();
        _app.Signals.OnWorkerReady(this, new WorkerSignalEventArgs(this));

        await consumer.ConfigureAwait(false);
        await autoscale.ConfigureAwait(false);
        window.Writer.TryComplete();
        int running = _registry.ActiveCount;
        if (abort.IsCancellationRequested)
        {
            Log.ColdShutdown(_logger, running);
        }
        else
        {
            Log.WarmShutdown(_lifecycle, running, window.Reader.Count);
        }

        await WaitForSlotsAsync(linkedAbort).ConfigureAwait(false);
        await Task.WhenAll(_timers.Keys).ConfigureAwait(false);
        await ReturnRateLimitedAsync().ConfigureAwait(false);
        await Task.WhenAll(_writes.Keys).ConfigureAwait(false);
        await AwaitLastAckAsync().ConfigureAwait(false);
        SaveStateDb();

        // What was prefetched but never started goes back to the broker for another worker.
        while (window.Reader.TryRead(out WorkerRequest? leftover))
        {
            await GiveBackAsync(leftover).ConfigureAwait(false);
        }

        await StopEventsAsync(heartStop, heart).ConfigureAwait(false);

        _app.Signals.OnWorkerShutdown(this, new WorkerSignalEventArgs(this));
    }

    /// <summary>
    /// Waits for the slots: in a warm shutdown for ever, or for the soft shutdown's timeout, after which the cold
    /// shutdown begins; once a cold shutdown has cancelled the running tasks only for
    /// <see cref="CeleriacOptions.ColdShutdownGrace"/>. A task still running then ignores its token; .NET cannot kill it
    /// (the prefork pool can), so it is abandoned as Celery's killed child is: settled as lost and its message settled,
    /// so the worker stops and nothing waits on it.
    /// </summary>
    private async Task WaitForSlotsAsync(CancellationTokenSource abort)
    {
        Task all = AllSlots();
        TimeSpan soft = _app.Options.SoftShutdownTimeout;
        if (!abort.IsCancellationRequested && soft > TimeSpan.Zero)
        {
            try
            {
                // Logged once the timer runs, so that what reads the log may move a fake clock on.
                Task waiting = all.WaitAsync(soft, _app.Time, abort.Token);
                Log.SoftShutdown(_logger, _registry.ActiveCount, soft.TotalSeconds);
                await waiting.ConfigureAwait(false);
                return;
            }
            catch (TimeoutException)
            {
                // The cold stop begins: what is cut off now is settled as cut, not lost (late-acked messages go back).
                Log.SoftShutdownExpired(_logger, _registry.ActiveCount, soft.TotalSeconds);
                _softShutdownCut = true;
                await abort.CancelAsync().ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (abort.IsCancellationRequested)
            {
                // A cold stop came first.
            }
        }

        try
        {
            await all.WaitAsync(abort.Token).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            // Cold: the running tasks' tokens are cancelled; give them the grace to unwind.
        }

        using (var grace = new CancellationTokenSource(_app.Options.ColdShutdownGrace, _app.Time))
        {
            try
            {
                await all.WaitAsync(grace.Token).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (grace.IsCancellationRequested)
            {
                // Some task ignores its token.
            }
        }

        foreach (WorkerRequest request in _registry.Active.ToList())
        {
            if (request.Running is { } running && running.TryAbandon(out TaskCompletionSource? abandoned))
            {
                Log.TaskAbandoned(_logger, request.Message!.Headers.Task, request.Message.Headers.Id, _app.Options.ColdShutdownGrace.TotalSeconds);
                try
                {
                    await FinishAsync(request, running.AcksLate, running.StoreResult, TaskOutcome.Lost("cold shutdown"), CancellationToken.None).ConfigureAwait(false);
                }
                finally
                {
                    abandoned.SetResult();
                }
            }
        }
    }

    private async Task ConsumeAsync(ITransport transport, ChannelWriter<WorkerRequest> writer, CancellationToken stop)
    {
        TimeSpan delay = TimeSpan.FromMilliseconds(100);
        while (!stop.IsCancellationRequested)
        {
            // Remote control's add_consumer / cancel_consumer cancel this consume, which starts again on the new queues.
            using var swap = CancellationTokenSource.CreateLinkedTokenSource(stop);
            string[] queues;
            lock (_queueGate)
            {
                _consumeSwap = swap;
                queues = _queues;
            }

            try
            {
                if (queues.Length == 0)
                {
                    await Task.Delay(Timeout.Infinite, swap.Token).ConfigureAwait(false);
                }

                await foreach (Delivery delivery in transport.ConsumeAsync(new ConsumeOptions { Queues = queues, Prefetch = _prefetch, CountUntilDone = _prefetchOff, ReportsStarts = true }, swap.Token).ConfigureAwait(false))
                {
                    delay = TimeSpan.FromMilliseconds(100);
                    var request = new WorkerRequest(delivery, this);
                    if (WorkerTelemetry.Listening)
                    {
                        request.Telemetry = new RequestTelemetry();
                    }

                    NoteTake();
                    _registry.Reserve(request);
                    if (HasEta(delivery) && _slotContext is { } slot && !await ReceiveAsync(request, slot).ConfigureAwait(false))
                    {
                        continue;
                    }

                    await QueueAsync(request, writer, stop).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException) when (swap.IsCancellationRequested)
            {
                // The queues changed.
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A broker outage must not end the worker: back off and consume again.
                NoteConsumerFault(ex);
                Log.ConsumerError(_logger, UrlText.Mask(_app.Options.BrokerUrl), delay.TotalSeconds, ex);
                try
                {
                    await Task.Delay(delay, _app.Time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
            finally
            {
                lock (_queueGate)
                {
                    if (_consumeSwap == swap)
                    {
                        _consumeSwap = null;
                    }
                }
            }
        }
    }

    private async ValueTask QueueAsync(WorkerRequest request, ChannelWriter<WorkerRequest> writer, CancellationToken stop)
    {
        try
        {
            await writer.WriteAsync(request, stop).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException)
        {
            await GiveBackAsync(request).ConfigureAwait(false);
            throw new OperationCanceledException(stop);
        }
    }

    /// <summary>
    /// Gives an unstarted request back to the broker for another worker; one the transport has withdrawn already is
    /// only dropped, since the broker has it again.
    /// </summary>
    private async ValueTask GiveBackAsync(WorkerRequest request)
    {
        _registry.Release(request);
        if (request.Delivery.TryClaim())
        {
            await request.Delivery.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
        }

        request.Message?.Dispose();
    }

    /// <summary>Holds a task until its ETA (or its rate limit's token), then queues it for a slot.</summary>
    private async Task DelayThenQueueAsync(WorkerRequest request, DateTimeOffset eta, ChannelWriter<WorkerRequest> writer, CancellationToken stop)
    {
        // The transport may withdraw a waiting delivery (AMQP: the channel was lost, or the message was parked
        // to stay clear of the broker's consumer timeout): the broker delivers it again, so this copy is dropped.
        using var stopOrWithdrawn = CancellationTokenSource.CreateLinkedTokenSource(stop, request.Delivery.WithdrawnToken);
        try
        {
            // A timer may fire a few milliseconds early (Linux timers count on a coarse monotonic clock), and a task
            // must never start before its ETA by the clock that set it: wait again for what is left, a bounded few times.
            for (int attempt = 0; attempt < 8; attempt++)
            {
                TimeSpan wait = eta - _app.Time.GetUtcNow();
                if (wait <= TimeSpan.Zero)
                {
                    break;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(wait.TotalMilliseconds)), _app.Time, stopOrWithdrawn.Token).ConfigureAwait(false);
            }

            _registry.Unschedule(request);
            await writer.WriteAsync(request, stopOrWithdrawn.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException)
        {
            await GiveBackAsync(request).ConfigureAwait(false);
        }
    }

    /// <summary>Keeps a background task in <paramref name="pending"/> until it ends, so shutdown can wait for it.</summary>
    private static void Track(ConcurrentDictionary<Task, byte> pending, Task task)
    {
        pending.TryAdd(task, 0);
        _ = task.ContinueWith(static (t, set) => ((ConcurrentDictionary<Task, byte>)set!).TryRemove(t, out _), pending, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }
}
