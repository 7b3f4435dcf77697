using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using Celeriac.Diagnostics;
using Celeriac.Protocol;
using Celeriac.Results;
using Celeriac.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Celeriac.Worker;

/// <summary>
/// Consumes the app's queues and runs their tasks with a fixed number of slots (the async pool).
/// Deliveries flow through a bounded channel, the prefetch window, to the slots; each slot decodes,
/// runs, stores the result and acks. Bad input is logged and dropped, never fatal.
/// </summary>
public sealed partial class CeleriacWorker
{
    private static readonly ExceptionInfo s_workerLost = new("WorkerLostError", "Worker exited prematurely: cold shutdown.", "billiard.exceptions");
    private readonly CeleriacApp _app;
    private readonly ILogger _logger;
    private readonly string _node;
    private readonly IReadOnlyList<string> _queues;
    private readonly int _concurrency;
    private readonly int _prefetch;
    private readonly bool _prefetchOff;
    private int _running;
    private long _processed;
    private readonly ConcurrentDictionary<Task, byte> _timers = new();
    private readonly ConcurrentDictionary<Task, byte> _writes = new();
    private int _pendingWrites;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Control.RevokedTasks _revoked;
    private readonly ConcurrentDictionary<string, RunningTask> _active = new(StringComparer.Ordinal);
    private readonly Lock _stateDbGate = new();
    private readonly RateLimiter<Request> _rateLimits;

    /// <summary>Creates a worker for an app; its options give the queues, concurrency and prefetch.</summary>
    public CeleriacWorker(CeleriacApp app)
    {
        ArgumentNullException.ThrowIfNull(app);
        _app = app;
        _logger = app.LoggerFactory.CreateLogger("Celeriac.Worker");
        CeleriacOptions o = app.Options;
        o.Validate();
        _node = o.EffectiveNodeName;
        _queues = o.EffectiveQueues;
        _concurrency = o.Concurrency;
        _prefetchOff = o.DisablePrefetch;
        _prefetch = o.DisablePrefetch ? o.Concurrency : o.PrefetchMultiplier == 0 ? 65_536 : Math.Max(1, o.Concurrency * o.PrefetchMultiplier);
        _revoked = new Control.RevokedTasks(app.Time);
        _rateLimits = new RateLimiter<Request>(app.Time);
        _rateLimits.Validate(app.Tasks);
    }

    /// <summary>The worker's node name.</summary>
    public string NodeName => _node;

    /// <summary>The queues it consumes.</summary>
    public IReadOnlyList<string> Queues => _queues;

    /// <summary>How many tasks it runs at once.</summary>
    public int Concurrency => _concurrency;

    /// <summary>Completes when the worker consumes.</summary>
    public Task Ready => _ready.Task;

    /// <summary>The task ids this worker was told to revoke (by remote control or in code).</summary>
    public Control.RevokedTasks Revoked => _revoked;

    /// <summary>Tasks finished so far.</summary>
    public long Processed => Interlocked.Read(ref _processed);

    /// <summary>
    /// Runs until <paramref name="stop"/> (warm shutdown: stop consuming, finish running tasks, return the
    /// prefetched ones) or <paramref name="abort"/> (cold shutdown: also cancel running tasks and return
    /// late-acked ones).
    /// </summary>
    public async Task RunAsync(CancellationToken stop, CancellationToken abort = default)
    {
        using var linkedAbort = CancellationTokenSource.CreateLinkedTokenSource(abort);
        LoadStateDb();
        _app.Signals.OnWorkerInit(this, new WorkerSignalEventArgs(this));
        ITransport transport = _app.Transport;
        IResultBackend backend = _app.ResultBackend;
        foreach (string q in _queues)
        {
            await transport.DeclareQueueAsync(_app.Options.DeclarationOf(q), abort).ConfigureAwait(false);
        }

        var window = Channel.CreateBounded<Request>(new BoundedChannelOptions(_prefetch)
        {
            SingleWriter = false,
            SingleReader = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
        using var stopOrAbort = CancellationTokenSource.CreateLinkedTokenSource(stop, abort);
        var slots = new Task[_concurrency];
        for (int i = 0; i < slots.Length; i++)
        {
            slots[i] = RunSlotAsync(window, backend, stopOrAbort.Token, linkedAbort.Token);
        }

        // Remote control (kombu's pidbox): revoke and ping from Celery's and Celeriac's clients.
        IAsyncDisposable control = await transport.SubscribeAsync(
            Control.Mailbox.Exchange, m => OnControlAsync(transport, m), new SubscriberBinding(_node + "." + Control.Mailbox.Exchange), abort).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable unsubscribe = control.ConfigureAwait(false);

        // Celery's gossip: every worker listens to the other workers' events, so its queue is part of the topology
        // Celery users see (celeryev.<uuid> bound to worker.#). Celeriac takes no part in gossip yet and drops them.
        IAsyncDisposable gossip = await transport.SubscribeAsync(
            "celeryev", static _ => ValueTask.CompletedTask, new SubscriberBinding("celeryev." + Guid.NewGuid().ToString(), "worker.#"), abort).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable unsubscribeGossip = gossip.ConfigureAwait(false);
        Task consumer = ConsumeAsync(transport, window.Writer, stopOrAbort.Token);
        Log.WorkerReady(_logger, _node);
        _ready.TrySetResult();
        _app.Signals.OnWorkerReady(this, new WorkerSignalEventArgs(this));

        await consumer.ConfigureAwait(false);
        window.Writer.TryComplete();
        int running = Volatile.Read(ref _running);
        if (abort.IsCancellationRequested)
        {
            Log.ColdShutdown(_logger, running);
        }
        else
        {
            Log.WarmShutdown(_logger, running, window.Reader.Count);
        }

        await WaitForSlotsAsync(slots, backend, abort).ConfigureAwait(false);
        await Task.WhenAll(_timers.Keys).ConfigureAwait(false);
        await ReturnRateLimitedAsync().ConfigureAwait(false);
        await Task.WhenAll(_writes.Keys).ConfigureAwait(false);
        SaveStateDb();

        // What was prefetched but never started goes back to the broker for another worker.
        while (window.Reader.TryRead(out Request leftover))
        {
            await leftover.Delivery.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
            leftover.Message?.Dispose();
        }

        _app.Signals.OnWorkerShutdown(this, new WorkerSignalEventArgs(this));
    }

    /// <summary>
    /// Waits for the slots: for ever in a warm shutdown (running tasks finish), but once a cold shutdown has cancelled
    /// the running tasks only for <see cref="CeleriacOptions.ColdShutdownGrace"/>. A task still running then ignores its
    /// token; .NET cannot kill it, so it is abandoned as Celery's killed child is: stored as lost (or given back, with
    /// reject_on_worker_lost) and its message settled, so the worker stops and nothing waits on it.
    /// </summary>
    private async Task WaitForSlotsAsync(Task[] slots, IResultBackend backend, CancellationToken abort)
    {
        Task all = Task.WhenAll(slots);
        try
        {
            await all.WaitAsync(abort).ConfigureAwait(false);
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

        foreach (RunningTask running in _active.Values)
        {
            if (running.TryAbandon(out TaskCompletionSource? abandoned))
            {
                Log.TaskAbandoned(_logger, running.Request.Message!.Headers.Task, running.Request.Message.Headers.Id, _app.Options.ColdShutdownGrace.TotalSeconds);
                try
                {
                    await WorkerLostAsync(running.Request, running.AcksLate, running.StoreResult, backend).ConfigureAwait(false);
                }
                finally
                {
                    abandoned.SetResult();
                }
            }
        }
    }

    private async Task ConsumeAsync(ITransport transport, ChannelWriter<Request> writer, CancellationToken stop)
    {
        TimeSpan delay = TimeSpan.FromMilliseconds(100);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await foreach (Delivery delivery in transport.ConsumeAsync(new ConsumeOptions { Queues = _queues, Prefetch = _prefetch, CountUntilDone = _prefetchOff }, stop).ConfigureAwait(false))
                {
                    delay = TimeSpan.FromMilliseconds(100);
                    await QueueAsync(new Request(delivery, null, null), writer, stop).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A broker outage must not end the worker: back off and consume again.
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
        }
    }

    private static async ValueTask QueueAsync(Request request, ChannelWriter<Request> writer, CancellationToken stop)
    {
        try
        {
            await writer.WriteAsync(request, stop).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException)
        {
            await request.Delivery.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
            request.Message?.Dispose();
            throw new OperationCanceledException(stop);
        }
    }

    /// <summary>Holds a task until its ETA, then queues it for a slot.</summary>
    private async Task DelayThenQueueAsync(Request request, DateTimeOffset eta, ChannelWriter<Request> writer, CancellationToken stop)
    {
        // The transport may withdraw a waiting delivery (AMQP: the channel was lost, or the message was parked
        // to stay clear of the broker's consumer timeout): the broker delivers it again, so this copy is dropped.
        using var stopOrWithdrawn = CancellationTokenSource.CreateLinkedTokenSource(stop, request.Delivery.WithdrawnToken);
        try
        {
            TimeSpan wait = eta - _app.Time.GetUtcNow();
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, _app.Time, stopOrWithdrawn.Token).ConfigureAwait(false);
            }

            await writer.WriteAsync(request, stopOrWithdrawn.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException)
        {
            if (request.Delivery.TryClaim())
            {
                await request.Delivery.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
            }

            request.Message?.Dispose();
        }
    }

    /// <summary>
    /// Revokes tasks on this worker, as Celery's <c>revoke</c> command: they are skipped when they arrive (and stored
    /// as REVOKED, and kept in the state file when there is one); with <paramref name="terminate"/>, those running now
    /// are cancelled and end REVOKED ("terminated").
    /// Returns Celery's reply text.
    /// </summary>
    public string Revoke(IReadOnlyList<string> taskIds, bool terminate = false)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        _revoked.Add(taskIds);
        SaveStateDb();
        if (terminate)
        {
            var terminated = new List<string>();
            foreach (string id in taskIds.Distinct(StringComparer.Ordinal))
            {
                if (_active.TryGetValue(id, out RunningTask? running) && running.Terminate())
                {
                    terminated.Add(id);
                }
            }

            return terminated.Count == 0 ? "terminate: tasks unknown" : "terminate: " + string.Join(", ", terminated);
        }

        string list = string.Join(", ", taskIds);
        Log.TasksRevoked(_logger, list);
        return $"tasks {list} flagged as revoked";
    }

    /// <summary>Reads the revoked ids a previous run kept in the state file; a bad file is logged, not fatal.</summary>
    private void LoadStateDb()
    {
        if (_app.Options.StateDb is not { } path || !File.Exists(path))
        {
            return;
        }

        try
        {
            int count = _revoked.Load(File.ReadAllBytes(path));
            Log.StateDbLoaded(_logger, path, count);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            Log.StateDbUnreadable(_logger, path, e);
        }
    }

    /// <summary>Writes the revoked ids to the state file (a new file renamed over the old, so a crash leaves one whole file).</summary>
    private void SaveStateDb()
    {
        if (_app.Options.StateDb is not { } path)
        {
            return;
        }

        // Revokes are rare and the file small: written at once, one writer at a time.
        lock (_stateDbGate)
        {
            try
            {
                string temporary = path + ".tmp";
                File.WriteAllBytes(temporary, _revoked.Save());
                File.Move(temporary, path, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.StateDbUnwritable(_logger, path, e);
            }
        }
    }

    /// <summary>Decodes a delivery; a bad one is logged, failed where its id is known, and acked.</summary>
    private async ValueTask<Request?> ReceiveAsync(Delivery delivery, IResultBackend backend, CancellationToken abort)
    {
        if (delivery.Message is not { } transportMessage)
        {
            Log.InvalidMessage(_logger, delivery.Queue, delivery.DecodeError ?? "unreadable message", "");
            await delivery.AckAsync(abort).ConfigureAwait(false);
            return null;
        }

        if (!TaskMessage.TryDecode(transportMessage, out TaskMessage? message, out string? id, out string? name, out string? error))
        {
            Log.InvalidMessage(_logger, delivery.Queue, error!, id is null ? "" : $" (task {name}[{id}])");
            _app.Signals.OnTaskRejected(this, new TaskSignalEventArgs { TaskId = id ?? "", TaskName = name ?? "", Queue = delivery.Queue, Message = transportMessage, Reason = error });
            if (id is not null && IsPlausibleId(id))
            {
                await StoreFailureAsync(backend, id, new ExceptionInfo("ContentDisallowed", error!, "kombu.exceptions"), null, abort, transportMessage.ReplyTo).ConfigureAwait(false);
            }

            await delivery.AckAsync(abort).ConfigureAwait(false);
            return null;
        }

        if (!_app.Tasks.TryGet(message!.Headers.Task, out CeleriacTask? task) || task.Invoker is null)
        {
            Log.UnknownTask(_logger, message.Headers.Task, message.Headers.Id);
            _app.Signals.OnTaskUnknown(this, new TaskSignalEventArgs { TaskId = message.Headers.Id, TaskName = message.Headers.Task, Queue = delivery.Queue, Message = transportMessage });
            await StoreFailureAsync(backend, message.Headers.Id,
                new ExceptionInfo("NotRegistered", message.Headers.Task, "celery.exceptions"), null, abort, message.Transport.ReplyTo).ConfigureAwait(false);
            await delivery.AckAsync(abort).ConfigureAwait(false);
            message.Dispose();
            return null;
        }

        if (_logger.IsEnabled(LogLevel.Information))
        {
            Log.TaskReceived(_logger, message.Headers.Task, message.Headers.Id);
        }

        return new Request(delivery, message, task);
    }

    private static bool IsPlausibleId(string id) => id.Length is > 0 and <= 255;

    private async ValueTask OnControlAsync(ITransport transport, TransportMessage m)
    {
        if (!Control.Mailbox.TryParse(m, out Control.ControlRequest? request))
        {
            Log.BadControlMessage(_logger);
            return;
        }

        if (request!.Destination is { } destination && !destination.Contains(_node, StringComparer.Ordinal)
            || request.Expires is { } expires && expires < _app.Time.GetUtcNow())
        {
            return;
        }

        Dictionary<string, object?> reply;
        switch (request.Method)
        {
            case "revoke":
                reply = new(StringComparer.Ordinal) { ["ok"] = Revoke(Control.Mailbox.RevokedIds(request), Control.Mailbox.Terminates(request)) };
                break;
            case "ping":
                reply = new(StringComparer.Ordinal) { ["ok"] = "pong" };
                break;
            case "rate_limit":
                reply = OnRateLimitCommand(request);
                break;
            case "time_limit":
                reply = OnTimeLimitCommand(request);
                break;
            default:
                Log.UnknownControlCommand(_logger, request.Method);
                reply = new(StringComparer.Ordinal) { ["error"] = $"No such command: {request.Method}" };
                break;
        }

        if (request.ReplyExchange is not null && request.ReplyRoutingKey is not null)
        {
            await transport.PublishAsync(request.ReplyExchange, request.ReplyRoutingKey, [Control.Mailbox.Reply(request, _node, reply)]).ConfigureAwait(false);
        }
    }

    private async Task RunSlotAsync(Channel<Request> window, IResultBackend backend, CancellationToken stop, CancellationToken abort)
    {
        ChannelReader<Request> reader = window.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stop).ConfigureAwait(false))
            {
                while (!stop.IsCancellationRequested && reader.TryRead(out Request request))
                {
                    if (request.Message is null)
                    {
                        // Decoding happens here, on the slots, so that one consumer loop never limits throughput.
                        if (await ReceiveAsync(request.Delivery, backend, abort).ConfigureAwait(false) is not { } decoded)
                        {
                            continue;
                        }

                        request = decoded;
                        if (request.Message!.Headers.Eta is { } eta && eta > _app.Time.GetUtcNow())
                        {
                            // Held until due, outside the prefetch window; a warm stop returns it to the broker
                            // like any other unstarted message.
                            request.Delivery.Defer();
                            Track(_timers, DelayThenQueueAsync(request, eta, window.Writer, stop));
                            continue;
                        }
                    }

                    if (HoldForRateLimit(request, window.Writer, stop))
                    {
                        continue;
                    }

                    if (!request.Delivery.TryClaim())
                    {
                        // Withdrawn by the transport before it started: the broker has it again.
                        request.Message.Dispose();
                        continue;
                    }

                    Interlocked.Increment(ref _running);
                    try
                    {
                        await ExecuteAsync(request, backend, abort).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (abort.IsCancellationRequested)
                    {
                        // Cold shutdown cancelled the work around the task (a revoke check's or a result's store; the
                        // task itself is handled as a lost worker): a late-acked message goes back to the broker
                        // (an early-acked one is already settled, so this does nothing).
                        await request.Delivery.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (Exception ex)
                    {
                        Log.InternalError(_logger, request.Message.Headers.Task, request.Message.Headers.Id, ex);
                        _app.Signals.OnTaskInternalError(this, new TaskSignalEventArgs { TaskId = request.Message.Headers.Id, TaskName = request.Message.Headers.Task, Queue = request.Delivery.Queue, Exception = ex });
                        await request.Delivery.RejectAsync(requeue: false, CancellationToken.None).ConfigureAwait(false);
                    }
                    finally
                    {
                        request.Message.Dispose();
                        Interlocked.Decrement(ref _running);
                        Interlocked.Increment(ref _processed);

                        // The slot is free: with prefetch off, only now may the transport take the next message.
                        request.Delivery.Done();
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Warm shutdown: leftovers are returned by RunAsync.
        }
    }

    private async ValueTask ExecuteAsync(Request request, IResultBackend backend, CancellationToken abort)
    {
        TaskMessage message = request.Message!;
        TaskHeaders h = message.Headers;
        CeleriacTask task = request.Task!;
        bool acksLate = task.Options.AcksLate ?? _app.Options.AcksLate;
        bool storeResult = !(h.IgnoreResult || task.Options.IgnoreResult);

        if (_revoked.Contains(h.Id))
        {
            Log.TaskRevoked(_logger, h.Task, h.Id);
            await SkipRevokedAsync(request, "revoked", backend, abort).ConfigureAwait(false);
            return;
        }

        if (h.Expires is { } expires && expires <= _app.Time.GetUtcNow())
        {
            Log.TaskExpired(_logger, h.Task, h.Id, CeleryJson.FormatIso(expires));
            await SkipRevokedAsync(request, "expired", backend, abort).ConfigureAwait(false);
            return;
        }

        if (!acksLate)
        {
            // Early ack: the message leaves the broker as the task starts. The task does not wait for the broker's
            // answer (a round trip per task on a networked broker); the worker waits for it before it stops.
            ValueTask ack = request.Delivery.AckAsync(abort);
            if (!ack.IsCompletedSuccessfully)
            {
                Track(_writes, AwaitAckAsync(ack, h));
            }
        }

        if (storeResult && (task.Options.TrackStarted ?? _app.Options.TrackStarted))
        {
            byte[] started = TaskResultMeta.SerializeValue(new Dictionary<string, object?> { ["pid"] = (long)Environment.ProcessId, ["hostname"] = _node });
            await StoreAsync(backend, Meta(message, TaskStates.Started, started, null, request, ready: false), abort).ConfigureAwait(false);
        }

        // Cancelled by a cold stop or by a revoke with terminate=true.
        using var run = CancellationTokenSource.CreateLinkedTokenSource(abort);
        var running = new RunningTask(run, request, acksLate, storeResult);
        _active[h.Id] = running;
        var context = new TaskContext(message, request.Delivery.Queue, _node, run.Token, (state, meta, ct) =>
            backend.StoreAsync(Meta(message, state, TaskResultMeta.SerializeValue(meta), null, request, ready: TaskStates.IsReady(state)), ct))
        {
            Definition = task,
        };
        TaskContext.SetCurrent(context);
        long start = Stopwatch.GetTimestamp();
        TaskResultMeta? outcome = null;
        bool failed = false;
        bool retried = false;
        bool lost = false;
        CeleriacSignals signals = _app.Signals;
        bool signal = signals.HasTaskHandlers;
        object? returned = null;
        Exception? thrown = null;
        if (signal)
        {
            signals.OnTaskPrerun(this, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = request.Delivery.Queue, Context = context });
        }

        try
        {
            object? value = await InvokeAsync(request, context, TimeLimitsOf(task, h)).ConfigureAwait(false);
            returned = value;
            bool log = _logger.IsEnabled(LogLevel.Information);
            if (storeResult || log)
            {
                byte[] json = TaskResultMeta.SerializeValue(value);
                if (log)
                {
                    Log.TaskSucceeded(_logger, h.Task, h.Id, Seconds(start), Shorten(json));
                }

                outcome = storeResult ? Meta(message, TaskStates.Success, json, null, request) : null;
            }
        }
        catch (RejectException reject)
        {
            // Celery's Reject: no state is stored; the message is dropped (dead-lettered) or given back.
            Log.TaskRejected(_logger, h.Task, h.Id, reject.Requeue, reject.Message);
            signals.OnTaskRejected(this, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = request.Delivery.Queue, Context = context, Exception = reject, Reason = reject.Message });
            await request.Delivery.RejectAsync(reject.Requeue, abort).ConfigureAwait(false);
            return;
        }
        catch (RetryException retry)
        {
            outcome = Retried(message, retry, request, storeResult || task.Options.StoreErrorsEvenIfIgnored);
            retried = true;
            signals.OnTaskRetry(this, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = request.Delivery.Queue, Context = context, Exception = retry.InnerException ?? retry, Reason = retry.Message });
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            lost = true;
        }
        catch (Exception ex)
        {
            failed = true;
            thrown = ex;
            ExceptionInfo error = Encode(ex);
            Log.TaskFailed(_logger, h.Task, h.Id, error.Type, error.Message, ex is TaskArgumentException or TimeLimitExceededException ? null : ex);

            // Celery: an ignored result stores no error either, unless store_errors_even_if_ignored; and no traceback
            // for a hard time limit (the task's code was left behind, not unwound).
            outcome = storeResult || task.Options.StoreErrorsEvenIfIgnored
                ? Meta(message, TaskStates.Failure, TimeLimits.SerializeResult(ex) ?? TaskResultMeta.SerializeException(error), ex is TimeLimitExceededException ? null : ex.ToString(), request)
                : null;
        }
        finally
        {
            _active.TryRemove(new KeyValuePair<string, RunningTask>(h.Id, running));
        }

        if (running.AbandonedBeforeItFinished() is { } abandoned)
        {
            // A cold shutdown gave up on it and has settled it as lost: what it did after that is discarded. Its
            // message is released only once that settling has read it.
            await abandoned.ConfigureAwait(false);
            return;
        }

        if (lost)
        {
            await WorkerLostAsync(request, acksLate, storeResult, backend).ConfigureAwait(false);
            return;
        }

        if (running.Terminated)
        {
            // Celery's terminate: whatever the task did once told to stop, it ends REVOKED.
            Log.TaskTerminated(_logger, h.Task, h.Id);
            outcome = RevokedMeta(request, "terminated");
            signals.OnTaskRevoked(this, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = request.Delivery.Queue, Context = context, State = TaskStates.Revoked, Reason = "terminated" });
        }
        else if (signal)
        {
            var done = new TaskSignalEventArgs
            {
                TaskId = h.Id, TaskName = h.Task, Queue = request.Delivery.Queue, Context = context,
                State = failed ? TaskStates.Failure : retried ? TaskStates.Retry : TaskStates.Success, Result = returned, Exception = thrown,
            };
            if (failed)
            {
                signals.OnTaskFailure(this, done);
            }
            else if (!retried)
            {
                signals.OnTaskSuccess(this, done);
            }

            signals.OnTaskPostrun(this, done);
        }

        // Celery's on_failure: a late-acked task that failed or timed out is acked, or with acks_on_failure_or_timeout
        // off, rejected without requeue (a dead-letter queue can keep it).
        bool? lateRequeue = failed ? AfterFailure(task) : null;

        // The document is encoded by now, so the message may be released while the write commits.
        ValueTask stored = outcome is null ? ValueTask.CompletedTask : StoreAsync(backend, outcome, abort);
        if (stored.IsCompletedSuccessfully)
        {
            if (acksLate)
            {
                await SettleLateAsync(request.Delivery, lateRequeue, abort).ConfigureAwait(false);
            }

            return;
        }

        // A store that commits later (SQLite group commit) must not hold the slot: the slot takes its next
        // task while the write commits, so one commit carries many results. A late ack still waits for it.
        if (Interlocked.Increment(ref _pendingWrites) > _prefetch)
        {
            await FinishStoreAsync(stored, request.Delivery, acksLate, lateRequeue, abort).ConfigureAwait(false);
            return;
        }

        Track(_writes, FinishStoreAsync(stored, request.Delivery, acksLate, lateRequeue, abort));
    }

    /// <summary>A task revoked or expired before it ran: stored REVOKED with the reason, signalled, and its message acked; it never runs.</summary>
    private async ValueTask SkipRevokedAsync(Request request, string reason, IResultBackend backend, CancellationToken abort)
    {
        TaskHeaders h = request.Message!.Headers;
        _app.Signals.OnTaskRevoked(this, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = request.Delivery.Queue, State = TaskStates.Revoked, Reason = reason });
        await StoreAsync(backend, RevokedMeta(request, reason), abort).ConfigureAwait(false);
        await request.Delivery.AckAsync(abort).ConfigureAwait(false);
    }

    /// <summary>Celery's REVOKED result: <c>TaskRevokedError</c> with the reason (revoked, expired or terminated).</summary>
    private TaskResultMeta RevokedMeta(Request request, string reason) =>
        Meta(request.Message!, TaskStates.Revoked, TaskResultMeta.SerializeException(new ExceptionInfo("TaskRevokedError", reason, "celery.exceptions")), null, request);

    /// <summary>
    /// A cold shutdown cut the task off: Celery's <c>WorkerLostError</c>. A late-acked task with reject_on_worker_lost
    /// goes back to the queue; otherwise FAILURE is stored and a late-acked message settled as after any failure, so a
    /// task that keeps bringing workers down does not loop for ever.
    /// </summary>
    private async ValueTask WorkerLostAsync(Request request, bool acksLate, bool storeResult, IResultBackend backend)
    {
        TaskMessage message = request.Message!;
        CeleriacTask task = request.Task!;
        if (acksLate && (task.Options.RejectOnWorkerLost ?? _app.Options.RejectOnWorkerLost))
        {
            Log.TaskLost(_logger, message.Headers.Task, message.Headers.Id, "returned to the queue");
            await request.Delivery.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
            return;
        }

        Log.TaskLost(_logger, message.Headers.Task, message.Headers.Id, "stored as FAILURE (WorkerLostError)");
        if (storeResult || task.Options.StoreErrorsEvenIfIgnored)
        {
            // The worker is going down: the store gets a few seconds, not the abort token that has fired already.
            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(5), _app.Time);
            await StoreAsync(backend, Meta(message, TaskStates.Failure, TaskResultMeta.SerializeException(s_workerLost), null, request), patience.Token).ConfigureAwait(false);
        }

        if (acksLate)
        {
            await SettleLateAsync(request.Delivery, AfterFailure(task), CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>How a late-acked message is settled after its task failed: an ack (null) or, without acks_on_failure_or_timeout, a reject without requeue.</summary>
    private bool? AfterFailure(CeleriacTask task) => (task.Options.AcksOnFailureOrTimeout ?? _app.Options.AcksOnFailureOrTimeout) ? null : false;

    /// <summary>Binds and runs the task's code (with its retries) in a DI scope of its own when it needs one.</summary>
    private ValueTask<object?> InvokeCoreAsync(Request request, TaskContext context)
    {
        CeleriacTask task = request.Task!;
        return task.Invoker!.NeedsServices && _app.Options.Services is { } services
            ? InvokeInScopeAsync(task, context, services)
            : InvokeAsync(task, context.Message, context, _app.Options.Services);
    }

    private static async ValueTask<object?> InvokeInScopeAsync(CeleriacTask task, TaskContext context, IServiceProvider services)
    {
        AsyncServiceScope scope = services.CreateAsyncScope();
        await using (scope.ConfigureAwait(false))
        {
            return await InvokeAsync(task, context.Message, context, scope.ServiceProvider).ConfigureAwait(false);
        }
    }

    /// <summary>Keeps a background task in <paramref name="pending"/> until it ends, so shutdown can wait for it.</summary>
    private static void Track(ConcurrentDictionary<Task, byte> pending, Task task)
    {
        pending.TryAdd(task, 0);
        _ = task.ContinueWith(static (t, set) => ((ConcurrentDictionary<Task, byte>)set!).TryRemove(t, out _), pending, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task AwaitAckAsync(ValueTask ack, TaskHeaders h)
    {
        try
        {
            await ack.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Not acked: the broker gives the message again later, so the task may run twice, never zero times.
            Log.AckFailed(_logger, h.Task, h.Id, e);
        }
    }

    /// <summary>Settles a late-acked delivery after its task: an ack, or a reject (<paramref name="requeue"/> not null).</summary>
    private static ValueTask SettleLateAsync(Delivery delivery, bool? requeue, CancellationToken abort) =>
        requeue is { } again ? delivery.RejectAsync(again, abort) : delivery.AckAsync(abort);

    private async Task FinishStoreAsync(ValueTask stored, Delivery delivery, bool acksLate, bool? lateRequeue, CancellationToken abort)
    {
        try
        {
            await stored.ConfigureAwait(false);
            if (acksLate)
            {
                await SettleLateAsync(delivery, lateRequeue, abort).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            // Cold shutdown before the result was stored: a late-acked message goes back to the broker.
            await delivery.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _pendingWrites);
        }
    }

    /// <summary>How a .NET exception travels: argument errors as Python's TypeError, so Python callers see theirs.</summary>
    private static ExceptionInfo Encode(Exception ex) => ex switch
    {
        TaskArgumentException => new ExceptionInfo("TypeError", ex.Message, "builtins"),
        _ => TimeLimits.Describe(ex) ?? ExceptionInfo.From(ex),
    };

    private TaskResultMeta Meta(TaskMessage message, string state, byte[] result, string? traceback, Request request, bool ready = true, byte[]? children = null)
    {
        TaskHeaders h = message.Headers;
        return new TaskResultMeta
        {
            TaskId = h.Id,
            Status = state,
            Result = result,
            Traceback = traceback,
            Children = children ?? TaskResultMeta.NoChildren,
            DateDone = ready ? _app.Time.GetUtcNow() : null,
            GroupId = h.Group,
            ParentId = h.ParentId,
            Extended = _app.Options.ResultExtended
                ? new ResultExtension(h.Task, RawJson(message.Args), RawJson(message.Kwargs), _node, h.Retries, request.Delivery.Queue)
                : null,
            ReplyTo = message.Transport.ReplyTo,
        };
    }

    private static byte[] RawJson(System.Text.Json.JsonElement e) => System.Text.Encoding.UTF8.GetBytes(e.GetRawText());

    private async ValueTask StoreAsync(IResultBackend backend, TaskResultMeta meta, CancellationToken ct)
    {
        try
        {
            await backend.StoreAsync(meta, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.StoreFailed(_logger, meta.Extended?.Name ?? "?", meta.TaskId, ex);
        }
    }

    private ValueTask StoreFailureAsync(IResultBackend backend, string id, ExceptionInfo error, string? traceback, CancellationToken ct, string? replyTo = null) =>
        StoreAsync(backend, new TaskResultMeta
        {
            TaskId = id,
            Status = TaskStates.Failure,
            Result = TaskResultMeta.SerializeException(error),
            Traceback = traceback,
            DateDone = _app.Time.GetUtcNow(),
            ReplyTo = replyTo,
        }, ct);

    private static string Seconds(long start) =>
        Stopwatch.GetElapsedTime(start).TotalSeconds.ToString("0.000###", CultureInfo.InvariantCulture);

    private static string Shorten(byte[] json)
    {
        string s = System.Text.Encoding.UTF8.GetString(json, 0, Math.Min(json.Length, 200));
        return json.Length > 200 ? s + "..." : s;
    }

    /// <summary>
    /// A delivery on its way to a slot; decoded by the slot that takes it (or before an ETA wait). RateLimitPassed: it
    /// has had its token from its task's rate limit.
    /// </summary>
    private readonly record struct Request(Delivery Delivery, TaskMessage? Message, CeleriacTask? Task, bool RateLimitPassed = false);

    /// <summary>A task that runs now, what stops it, and who settles it: its slot when it ends, or a cold shutdown that gave up on it.</summary>
    private sealed class RunningTask(CancellationTokenSource run, Request request, bool acksLate, bool storeResult)
    {
        private const int Running = 0;
        private const int Finished = 1;
        private const int Abandoned = 2;
        private int _terminated;
        private int _state;
        private TaskCompletionSource? _abandoned;

        public Request Request => request;

        public bool AcksLate => acksLate;

        public bool StoreResult => storeResult;

        /// <summary>Called by the slot when the task has ended: the task that settles the abandoned one if a cold shutdown took it first, else null.</summary>
        public Task? AbandonedBeforeItFinished() =>
            Interlocked.CompareExchange(ref _state, Finished, Running) == Running ? null : Volatile.Read(ref _abandoned)!.Task;

        /// <summary>Takes the task from its slot for settling, unless it has just ended; complete <paramref name="abandoned"/> once settled.</summary>
        public bool TryAbandon([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TaskCompletionSource? abandoned)
        {
            // Published before the state changes, so that a slot that sees Abandoned also sees what to wait for.
            abandoned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _abandoned, abandoned);
            if (Interlocked.CompareExchange(ref _state, Abandoned, Running) == Running)
            {
                return true;
            }

            abandoned = null;
            return false;
        }

        public bool Terminated => Volatile.Read(ref _terminated) != 0;

        public bool Terminate()
        {
            if (Interlocked.Exchange(ref _terminated, 1) != 0)
            {
                return false;
            }

            try
            {
                run.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // It has just finished.
            }

            return true;
        }
    }
}
