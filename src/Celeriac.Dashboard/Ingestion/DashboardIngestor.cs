using System.Buffers;
using System.Text;
using System.Text.Json;
using Celeriac.Control;
using Celeriac.Dashboard.Http;
using Celeriac.Dashboard.Store;
using Celeriac.Events;
using Celeriac.Protocol;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Celeriac.Dashboard.Ingestion;

/// <summary>
/// Receives the cluster's events (Celeriac's and Python Celery's alike), folds them with the core's
/// <see cref="ClusterState"/> (its precedence rules; a bounded set of recent tasks in memory), and writes what changed
/// to the <see cref="IDashboardStore"/> in batches, one transaction every <see cref="CeleriacDashboardOptions.FlushInterval"/>
/// or <see cref="CeleriacDashboardOptions.FlushEvents"/> events, whichever comes first. A task that left the in-memory
/// set is merged in the store (a null field keeps the stored value). Also feeds <see cref="FlowerMetrics"/> and the live
/// stream, turns workers offline when their heartbeats stop, and prunes the store.
/// </summary>
public sealed class DashboardIngestor : BackgroundService
{
    private readonly CeleriacApp _app;
    private readonly IDashboardStore _store;
    private readonly CeleriacDashboardOptions _options;
    private readonly DashboardLive _live;
    private readonly FlowerMetrics _metrics;
    private readonly WorkerInspections _inspections;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ClusterState _state;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _flushGate = new(1, 1);
    private readonly SemaphoreSlim _flushSoon = new(0, 1);
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private HashSet<string> _dirtyTasks = new(StringComparer.Ordinal);
    private HashSet<string> _dirtyWorkers = new(StringComparer.Ordinal);
    private List<TaskEventRecord> _pendingEvents = [];
    private readonly Dictionary<string, DashboardWorker> _workers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _retryOf = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (bool Online, double At)> _published = new(StringComparer.Ordinal);
    private long _eventsApplied;

    /// <summary>Wires the service to the app, the store and the dashboard's parts.</summary>
    public DashboardIngestor(CeleriacApp app, IDashboardStore store, IOptions<CeleriacDashboardOptions> options, DashboardLive live, FlowerMetrics metrics,
        WorkerInspections inspections, TimeProvider time, ILogger<DashboardIngestor> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _app = app;
        _store = store;
        _options = options.Value;
        _live = live;
        _metrics = metrics;
        _inspections = inspections;
        _time = time;
        _logger = logger;
        _state = new ClusterState(time, _options.HotTasks, _options.MaxWorkers);
    }

    /// <summary>Completes once the receiver listens (events sent after it are seen).</summary>
    public Task Ready => _ready.Task;

    /// <summary>Events applied since start.</summary>
    public long EventsApplied => Interlocked.Read(ref _eventsApplied);

    /// <summary>Whether the receiver is reading from the broker (what <c>/healthcheck</c> reports).</summary>
    public bool Receiving { get; private set; }

    private double Now => _time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>Workers as the dashboard knows them now.</summary>
    public IReadOnlyList<DashboardWorker> Workers
    {
        get
        {
            lock (_gate)
            {
                return [.. _workers.Values.OrderBy(w => w.Hostname, StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>A worker by hostname, or null.</summary>
    public DashboardWorker? GetWorker(string hostname)
    {
        lock (_gate)
        {
            return _workers.GetValueOrDefault(hostname);
        }
    }

    /// <summary>Records that <paramref name="newId"/> re-sends <paramref name="oldId"/>, with what the store shows until its events come.</summary>
    public void RecordRetry(string newId, string oldId, DashboardTask original)
    {
        ArgumentNullException.ThrowIfNull(original);
        var fields = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["type"] = "task-sent", ["uuid"] = newId, ["name"] = original.Name, ["args"] = original.Args, ["kwargs"] = original.Kwargs,
            ["routing_key"] = original.RoutingKey, ["exchange"] = original.Exchange, ["root_id"] = original.RootId, ["parent_id"] = original.ParentId,
            ["hostname"] = "dashboard", ["timestamp"] = Now, ["local_received"] = Now,
        };
        lock (_gate)
        {
            _retryOf[newId] = oldId;
        }

        Apply(new CeleryEvent(fields));
    }

    /// <summary>Folds one event in (what the receiver loop calls; tests and the benchmark feed events here too).</summary>
    public void Apply(CeleryEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        bool flushSoon;
        lock (_gate)
        {
            _eventsApplied++;
            _state.Apply(e);
            string type = e.Type;
            string? hostname = e.Hostname;
            ClusterTask? task = null;
            if (type.StartsWith("task-", StringComparison.Ordinal) && e.Uuid is { } uuid)
            {
                task = _state.GetTask(uuid);
                _dirtyTasks.Add(uuid);
                _pendingEvents.Add(new TaskEventRecord(uuid, type, e.Timestamp, hostname, FieldsJson(e)));
                if (type != "task-sent" && hostname is not null)
                {
                    TouchWorker(hostname, type, e, snapshot: null);
                }
            }
            else if (type.StartsWith("worker-", StringComparison.Ordinal) && hostname is not null)
            {
                TouchWorker(hostname, type, e, _state.GetWorker(hostname));
            }

            _metrics.Observe(e, task);
            flushSoon = _pendingEvents.Count >= _options.FlushEvents;
        }

        if (flushSoon && _flushSoon.CurrentCount == 0)
        {
            try
            {
                _flushSoon.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled.
            }
        }
    }

    private void TouchWorker(string hostname, string type, CeleryEvent e, ClusterWorker? snapshot)
    {
        DashboardWorker w = _workers.GetValueOrDefault(hostname) ?? new DashboardWorker { Hostname = hostname };
        double received = e.LocalReceived > 0 ? e.LocalReceived : Now;
        w = w with
        {
            LastHeartbeat = type == "worker-offline" ? w.LastHeartbeat : Math.Max(w.LastHeartbeat ?? 0, received),
            WentOffline = type == "worker-offline",
            Succeeded = w.Succeeded + (type == "task-succeeded" ? 1 : 0),
            Failed = w.Failed + (type == "task-failed" ? 1 : 0),
            RetriedCount = w.RetriedCount + (type == "task-retried" ? 1 : 0),
        };
        if (snapshot is not null)
        {
            w = w with
            {
                Pid = snapshot.Pid ?? w.Pid, Freq = snapshot.Freq, Active = snapshot.Active ?? w.Active, Processed = snapshot.Processed ?? w.Processed,
                LoadAverage = snapshot.LoadAverage ?? w.LoadAverage, SwIdent = snapshot.SwIdent ?? w.SwIdent, SwVer = snapshot.SwVer ?? w.SwVer,
                SwSys = snapshot.SwSys ?? w.SwSys,
            };
        }

        if (!_workers.ContainsKey(hostname) && _workers.Count >= _options.MaxWorkers)
        {
            // Bounded: the worker heard from least recently makes room.
            string oldest = _workers.Values.MinBy(x => x.LastHeartbeat ?? 0)!.Hostname;
            _workers.Remove(oldest);
            _published.Remove(oldest);
            _metrics.RemoveWorker(oldest);
        }

        _workers[hostname] = w;
        _dirtyWorkers.Add(hostname);
    }

    /// <summary>Asks the workers (or one) everything Flower's worker page shows, and keeps their pool size and queues.</summary>
    public async Task<IReadOnlyDictionary<string, WorkerInspection>> RefreshInspectionsAsync(string? workername, CancellationToken ct = default)
    {
        IReadOnlyDictionary<string, WorkerInspection> found = await _inspections.RefreshAsync(workername, ct).ConfigureAwait(false);
        foreach ((string hostname, WorkerInspection i) in found)
        {
            UpdateFromInspect(hostname, i.PoolSize, i.QueueNames);
        }

        return found;
    }

    /// <summary>Adds what <c>inspect</c> told about a worker's pool and queues.</summary>
    internal void UpdateFromInspect(string hostname, int? poolSize, IReadOnlyList<string>? queues)
    {
        lock (_gate)
        {
            if (_workers.TryGetValue(hostname, out DashboardWorker? w))
            {
                _workers[hostname] = w with { PoolSize = poolSize ?? w.PoolSize, Queues = queues ?? w.Queues };
                _dirtyWorkers.Add(hostname);
            }
        }
    }

    private static string FieldsJson(CeleryEvent e)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach ((string key, object? value) in e.Fields)
            {
                if (key is "type" or "uuid" or "hostname" or "timestamp")
                {
                    continue;
                }

                w.WritePropertyName(key);
                JsonValues.Write(w, value);
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Writes what changed since the last write to the store in one batch, and tells the live stream.</summary>
    public async Task FlushAsync(CancellationToken ct = default)
    {
        await _flushGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            List<DashboardTask> tasks;
            List<DashboardWorker> workers;
            List<TaskEventRecord> events;
            lock (_gate)
            {
                if (_dirtyTasks.Count == 0 && _dirtyWorkers.Count == 0 && _pendingEvents.Count == 0)
                {
                    return;
                }

                tasks = new List<DashboardTask>(_dirtyTasks.Count);
                foreach (string uuid in _dirtyTasks)
                {
                    if (_state.GetTask(uuid) is { } t)
                    {
                        string? retryOf = _retryOf.Remove(uuid, out string? old) ? old : null;
                        tasks.Add(ToDashboard(t, retryOf));
                    }
                }

                workers = [.. _dirtyWorkers.Select(h => _workers.GetValueOrDefault(h)).OfType<DashboardWorker>()];
                events = _pendingEvents;
                _dirtyTasks = new HashSet<string>(StringComparer.Ordinal);
                _dirtyWorkers = new HashSet<string>(StringComparer.Ordinal);
                _pendingEvents = new List<TaskEventRecord>(Math.Min(events.Count, _options.FlushEvents));
            }

            await _store.WriteAsync(new DashboardBatch(tasks, workers, events), ct).ConfigureAwait(false);
            if (_live.HasSubscribers)
            {
                foreach (DashboardTask t in tasks)
                {
                    _live.Publish("task", FlowerJson.Task(t).ToJsonString(FlowerJson.Options));
                }
            }

            PublishWorkers(workers);
        }
        finally
        {
            _flushGate.Release();
        }
    }

    /// <summary>Worker rows to the stream: a change of online/offline at once, heartbeats at most one per worker per second.</summary>
    private void PublishWorkers(IEnumerable<DashboardWorker> workers)
    {
        double now = Now;
        foreach (DashboardWorker w in workers)
        {
            bool online = w.IsOnline(now);
            bool send;
            lock (_gate)
            {
                send = !_published.TryGetValue(w.Hostname, out var last) || last.Online != online || now - last.At >= 1;
                if (send)
                {
                    _published[w.Hostname] = (online, now);
                }
            }

            if (send && _live.HasSubscribers)
            {
                _live.Publish("worker", FlowerJson.WorkerRow(w, now).ToJsonString(FlowerJson.Options));
            }
        }
    }

    /// <summary>Turns workers whose heartbeat window passed offline (in metrics and on the stream).</summary>
    internal void CheckLiveness()
    {
        double now = Now;
        List<DashboardWorker> changed = [];
        lock (_gate)
        {
            foreach (DashboardWorker w in _workers.Values)
            {
                if (_published.TryGetValue(w.Hostname, out var last) && last.Online && !w.IsOnline(now))
                {
                    changed.Add(w);
                    _metrics.MarkOffline(w.Hostname);
                }
            }
        }

        PublishWorkers(changed);
    }

    internal static DashboardTask ToDashboard(ClusterTask t, string? retryOf)
    {
        static double? S(DateTimeOffset? d) => d is { } v ? (v - DateTimeOffset.UnixEpoch).TotalSeconds : null;
        return new DashboardTask
        {
            Uuid = t.Uuid, State = t.State, Name = t.Name, Sent = S(t.Sent), Received = S(t.Received), Started = S(t.Started), Succeeded = S(t.Succeeded),
            Failed = S(t.Failed), Retried = S(t.Retried), Revoked = S(t.Revoked), Rejected = S(t.Rejected), Timestamp = S(t.Timestamp) ?? 0,
            Runtime = t.Runtime, Args = t.Args, Kwargs = t.Kwargs, Result = t.Result, Exception = t.Exception, Traceback = t.Traceback, Worker = t.Worker,
            Retries = t.Retries, Eta = t.Eta, Expires = t.Expires, RoutingKey = t.RoutingKey, Exchange = t.Exchange, RootId = t.RootId,
            ParentId = t.ParentId, Client = t.Client, Clock = t.Clock, RetryOf = retryOf,
        };
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (DashboardWorker w in await _store.GetWorkersAsync(stoppingToken).ConfigureAwait(false))
        {
            lock (_gate)
            {
                _workers[w.Hostname] = w;
                _published[w.Hostname] = (w.IsOnline(Now), Now);
            }
        }

        Task flushing = FlushLoopAsync(stoppingToken);
        Task controlling = ControlLoopAsync(stoppingToken);
        try
        {
            await ReceiveLoopAsync(stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            await Task.WhenAll(flushing, controlling).ConfigureAwait(false);
            await FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task ReceiveLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var receiver = new EventReceiver(_app) { Capacity = 50_000 };
            _ = receiver.Subscribed.ContinueWith(_ =>
            {
                Receiving = true;
                _ready.TrySetResult();
            }, CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            try
            {
                await foreach (CeleryEvent e in receiver.ReadAsync(ct).ConfigureAwait(false))
                {
                    Apply(e);
                    bool behind;
                    lock (_gate)
                    {
                        behind = _pendingEvents.Count >= _options.FlushEvents * 20;
                    }

                    if (behind)
                    {
                        // The store is behind: wait for a write instead of holding ever more in memory.
                        await FlushAsync(ct).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Receiving = false;
                _logger.LogWarning(ex, "The dashboard lost the broker's events; retrying in 1 s");
                await Task.Delay(TimeSpan.FromSeconds(1), _time, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task FlushLoopAsync(CancellationToken ct)
    {
        DateTimeOffset nextPrune = _time.GetUtcNow();
        DateTimeOffset nextLiveness = _time.GetUtcNow();
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _flushSoon.WaitAsync(_options.FlushInterval, ct).ConfigureAwait(false);
                await FlushAsync(ct).ConfigureAwait(false);
                DateTimeOffset now = _time.GetUtcNow();
                if (now >= nextLiveness)
                {
                    CheckLiveness();
                    nextLiveness = now + TimeSpan.FromSeconds(1);
                }

                if (now >= nextPrune)
                {
                    nextPrune = now + _options.PruneInterval;
                    long pruned = await _store.PruneAsync(_options.MaxTasks, Now - _options.MaxAge.TotalSeconds, ct).ConfigureAwait(false);
                    if (pruned > 0)
                    {
                        _logger.LogDebug("Pruned {Count} tasks from the dashboard's store", pruned);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _logger.LogWarning(ex, "The dashboard could not write to its store; retrying");
                await Task.Delay(TimeSpan.FromSeconds(1), _time, ct).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            }
        }
    }

    /// <summary>As Flower: enables the workers' task events now and then, and asks them for their pool and queues.</summary>
    private async Task ControlLoopAsync(CancellationToken ct)
    {
        DateTimeOffset nextEnable = _time.GetUtcNow();
        DateTimeOffset nextInspect = _time.GetUtcNow();
        DateTimeOffset lastInspect = DateTimeOffset.MinValue;
        var control = ControlClient.For(_app);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _ready.Task.WaitAsync(ct).ConfigureAwait(false);
                DateTimeOffset now = _time.GetUtcNow();
                if (_options.EnableEventsInterval > TimeSpan.Zero && now >= nextEnable)
                {
                    nextEnable = now + _options.EnableEventsInterval;
                    await control.EnableEventsAsync(new ControlOptions { Reply = false }, ct).ConfigureAwait(false);
                }

                bool unknown;
                lock (_gate)
                {
                    unknown = _workers.Values.Any(w => w.IsOnline(Now) && w.PoolSize is null);
                }

                // A worker not inspected yet is asked within seconds; the rest every InspectInterval.
                if (now >= nextInspect || (unknown && now >= lastInspect + TimeSpan.FromSeconds(3)))
                {
                    lastInspect = now;
                    nextInspect = now + _options.InspectInterval;
                    await RefreshInspectionsAsync(null, ct).ConfigureAwait(false);
                }

                await Task.Delay(TimeSpan.FromSeconds(1), _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                _logger.LogDebug(ex, "A control round failed; the next one retries");
                await Task.Delay(TimeSpan.FromSeconds(1), _time, ct).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _flushGate.Dispose();
        _flushSoon.Dispose();
        base.Dispose();
    }
}
