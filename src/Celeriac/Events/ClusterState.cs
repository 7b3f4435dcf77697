namespace Celeriac.Events;

/// <summary>
/// The cluster as its events show it, as Celery's <c>celery.events.state.State</c>: workers by hostname, alive while
/// their heartbeats come (offline once the last is older than twice their <c>freq</c>, Celery's 200% expire window, or
/// at once on <c>worker-offline</c>), and tasks by id with their state, fields, timestamps, runtime, worker and
/// timeline. Events may arrive out of order: a task's state follows Celery's precedence (a late <c>task-started</c>
/// does not undo <c>SUCCESS</c>; a late <c>task-received</c> only fills in the name and arguments). Memory is bounded:
/// at most <see cref="MaxTasks"/> tasks and <see cref="MaxWorkers"/> workers, the least recently updated dropped first.
/// Thread-safe: apply events from a receiver while other threads read snapshots.
/// </summary>
public sealed class ClusterState
{
    /// <summary>Celery's <c>max_tasks_in_memory</c>.</summary>
    public const int DefaultMaxTasks = 10_000;

    /// <summary>Celery's <c>max_workers_in_memory</c>.</summary>
    public const int DefaultMaxWorkers = 5_000;

    /// <summary>Celery's <c>HEARTBEAT_EXPIRE_WINDOW</c>: a worker is offline once <c>freq × 200%</c> passed since its last heartbeat.</summary>
    public const double ExpireWindowPercent = 200;

    /// <summary>Celery's <c>Worker.heartbeat_max</c>: the heartbeats kept per worker.</summary>
    private const int HeartbeatMax = 4;

    /// <summary>Celery's state after <c>task-rejected</c> (not a result state, so not in <see cref="TaskStates"/>).</summary>
    public const string Rejected = "REJECTED";

    /// <summary>The events kept in a task's timeline; a task retried for ever keeps its latest.</summary>
    private const int TimelineMax = 100;

    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly Lru<WorkerEntry> _workers;
    private readonly Lru<TaskEntry> _tasks;
    private readonly HashSet<string> _taskTypes = new(StringComparer.Ordinal);
    private long _eventCount;
    private long _taskCount;

    /// <summary>A state whose liveness is judged on <paramref name="time"/> (the system clock if null).</summary>
    public ClusterState(TimeProvider? time = null, int maxTasks = DefaultMaxTasks, int maxWorkers = DefaultMaxWorkers)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTasks, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxWorkers, 1);
        _time = time ?? TimeProvider.System;
        MaxTasks = maxTasks;
        MaxWorkers = maxWorkers;
        _tasks = new Lru<TaskEntry>(maxTasks);
        _workers = new Lru<WorkerEntry>(maxWorkers);
    }

    /// <summary>The most tasks kept.</summary>
    public int MaxTasks { get; }

    /// <summary>The most workers kept.</summary>
    public int MaxWorkers { get; }

    /// <summary>Events applied.</summary>
    public long EventCount
    {
        get
        {
            lock (_gate)
            {
                return _eventCount;
            }
        }
    }

    /// <summary>Tasks received by workers (<c>task-received</c> events), as Celery's <c>task_count</c>.</summary>
    public long TaskCount
    {
        get
        {
            lock (_gate)
            {
                return _taskCount;
            }
        }
    }

    /// <summary>Applies one event (Celery's <c>State.event</c>); events of other groups are counted and otherwise ignored.</summary>
    public void Apply(CeleryEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        lock (_gate)
        {
            _eventCount++;
            string type = e.Type;
            int dash = type.IndexOf('-', StringComparison.Ordinal);
            if (dash < 0)
            {
                return;
            }

            string group = type[..dash];
            string subject = type[(dash + 1)..];

            // An event built by hand has no local_received: take it as received now, as a receiver would stamp it.
            double received = e.LocalReceived > 0 ? e.LocalReceived : EventMessages.Timestamp(_time.GetUtcNow());
            if (group == "worker")
            {
                ApplyWorker(subject, e, received);
            }
            else if (group == "task")
            {
                ApplyTask(subject, e, received);
            }
        }
    }

    /// <summary>Every worker seen (alive or not), by hostname.</summary>
    public IReadOnlyList<ClusterWorker> Workers
    {
        get
        {
            double now = Now();
            lock (_gate)
            {
                return [.. _workers.Values.Select(w => w.Snapshot(now)).OrderBy(w => w.Hostname, StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>The workers alive now (a heartbeat within twice their <c>freq</c>).</summary>
    public IReadOnlyList<ClusterWorker> AliveWorkers => [.. Workers.Where(w => w.Alive)];

    /// <summary>A worker by hostname, or null.</summary>
    public ClusterWorker? GetWorker(string hostname)
    {
        ArgumentNullException.ThrowIfNull(hostname);
        double now = Now();
        lock (_gate)
        {
            return _workers.TryGet(hostname, out WorkerEntry? w) ? w.Snapshot(now) : null;
        }
    }

    /// <summary>A task by id, or null.</summary>
    public ClusterTask? GetTask(string uuid)
    {
        ArgumentNullException.ThrowIfNull(uuid);
        lock (_gate)
        {
            return _tasks.TryGet(uuid, out TaskEntry? t) ? t.Snapshot() : null;
        }
    }

    /// <summary>The tasks, the most recently updated first; at most <paramref name="limit"/> when given.</summary>
    public IReadOnlyList<ClusterTask> Tasks(int? limit = null)
    {
        lock (_gate)
        {
            IEnumerable<TaskEntry> newest = _tasks.Values.Reverse();
            return [.. (limit is { } n ? newest.Take(n) : newest).Select(t => t.Snapshot())];
        }
    }

    /// <summary>The tasks a worker ran (or is running), the most recently updated first.</summary>
    public IReadOnlyList<ClusterTask> TasksByWorker(string hostname, int? limit = null)
    {
        ArgumentNullException.ThrowIfNull(hostname);
        lock (_gate)
        {
            IEnumerable<TaskEntry> mine = _tasks.Values.Reverse().Where(t => t.Worker == hostname);
            return [.. (limit is { } n ? mine.Take(n) : mine).Select(t => t.Snapshot())];
        }
    }

    /// <summary>How many tasks in memory are in each state (<c>RECEIVED</c>, <c>STARTED</c>, <c>SUCCESS</c>, ...).</summary>
    public IReadOnlyDictionary<string, int> TaskCountsByState()
    {
        lock (_gate)
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (TaskEntry t in _tasks.Values)
            {
                counts[t.State] = counts.GetValueOrDefault(t.State) + 1;
            }

            return counts;
        }
    }

    /// <summary>The task names seen, sorted (Celery's <c>task_types()</c>).</summary>
    public IReadOnlyList<string> TaskTypes()
    {
        lock (_gate)
        {
            return [.. _taskTypes.Order(StringComparer.Ordinal)];
        }
    }

    /// <summary>Forgets every worker and task, and the counts.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _workers.Clear();
            _tasks.Clear();
            _taskTypes.Clear();
            _eventCount = 0;
            _taskCount = 0;
        }
    }

    private double Now() => EventMessages.Timestamp(_time.GetUtcNow());

    private void ApplyWorker(string subject, CeleryEvent e, double received)
    {
        if (e.Hostname is not { } hostname)
        {
            return;
        }

        bool offline = subject == "offline";
        if (!_workers.TryGet(hostname, out WorkerEntry? worker))
        {
            // As Celery: an offline event for a worker never seen creates nothing.
            if (offline)
            {
                return;
            }

            worker = new WorkerEntry(hostname);
        }

        _workers.Touch(hostname, worker);
        worker.Update(e);
        if (offline)
        {
            worker.Heartbeats.Clear();
        }
        else
        {
            worker.Beat(received);
        }
    }

    private void ApplyTask(string subject, CeleryEvent e, double received)
    {
        if (e.Uuid is not { } uuid)
        {
            return;
        }

        if (!_tasks.TryGet(uuid, out TaskEntry? task))
        {
            task = new TaskEntry(uuid);
        }

        _tasks.Touch(uuid, task);
        string? hostname = e.Hostname;
        if (subject == "sent")
        {
            // Sent by a client, not a worker.
            task.Client = hostname;
        }
        else if (hostname is not null)
        {
            if (!_workers.TryGet(hostname, out WorkerEntry? worker))
            {
                worker = new WorkerEntry(hostname);
            }

            _workers.Touch(hostname, worker);

            // A worker's task events show it alive as its heartbeats do (Celery counts them too); taken at the time
            // they were received, as heartbeats are, so that a sender's clock cannot keep a worker alive.
            worker.Beat(received);
            task.Worker = hostname;
        }

        if (subject == "received")
        {
            _taskCount++;
        }

        task.Apply(subject, e);
        if (task.Name is { } name)
        {
            _taskTypes.Add(name);
        }
    }

    /// <summary>A worker as the state knows it.</summary>
    private sealed class WorkerEntry(string hostname)
    {
        public string Hostname { get; } = hostname;

        public long? Pid { get; private set; }

        public double Freq { get; private set; } = 60;

        public long Clock { get; private set; }

        public long? Active { get; private set; }

        public long? Processed { get; private set; }

        public IReadOnlyList<double>? LoadAverage { get; private set; }

        public string? SwIdent { get; private set; }

        public string? SwVer { get; private set; }

        public string? SwSys { get; private set; }

        /// <summary>The latest heartbeats' receive times, oldest first.</summary>
        public List<double> Heartbeats { get; } = [];

        public void Update(CeleryEvent e)
        {
            Pid = e.GetInt64("pid") ?? Pid;
            Freq = e.GetDouble("freq") is { } freq and > 0 ? freq : Freq;
            Clock = e.GetInt64("clock") ?? Clock;
            Active = e.GetInt64("active") ?? Active;
            Processed = e.GetInt64("processed") ?? Processed;
            if (e.Fields.GetValueOrDefault("loadavg") is List<object?> load)
            {
                LoadAverage = [.. load.Select(v => v switch { double d => d, long l => l, _ => 0.0 })];
            }

            SwIdent = e.GetString("sw_ident") ?? SwIdent;
            SwVer = e.GetString("sw_ver") ?? SwVer;
            SwSys = e.GetString("sw_sys") ?? SwSys;
        }

        /// <summary>Celery's <c>Worker.event</c>: keeps the latest <see cref="HeartbeatMax"/> receive times, in order.</summary>
        public void Beat(double received)
        {
            if (received <= 0)
            {
                return;
            }

            if (Heartbeats.Count > HeartbeatMax - 1)
            {
                Heartbeats.RemoveAt(0);
            }

            if (Heartbeats.Count == 0 || received > Heartbeats[^1])
            {
                Heartbeats.Add(received);
            }
            else
            {
                int at = Heartbeats.BinarySearch(received);
                Heartbeats.Insert(at < 0 ? ~at : at + 1, received);
            }
        }

        public ClusterWorker Snapshot(double now)
        {
            double? last = Heartbeats.Count > 0 ? Heartbeats[^1] : null;
            double? expires = last is { } l ? l + (Freq * (ExpireWindowPercent / 100)) : null;
            return new ClusterWorker
            {
                Hostname = Hostname,
                Pid = Pid,
                Freq = Freq,
                Clock = Clock,
                Active = Active,
                Processed = Processed,
                LoadAverage = LoadAverage,
                SwIdent = SwIdent,
                SwVer = SwVer,
                SwSys = SwSys,
                LastHeartbeat = last is { } seen ? CeleryEvent.FromSeconds(seen) : null,
                HeartbeatExpires = expires is { } x ? CeleryEvent.FromSeconds(x) : null,
                Alive = expires is { } until && now < until,
            };
        }
    }

    /// <summary>A task as the state knows it.</summary>
    private sealed class TaskEntry(string uuid)
    {
        // Celery's merge rule: a task-received that comes after a later state only fills in these.
        private static readonly HashSet<string> s_receivedKeeps = new(StringComparer.Ordinal)
        {
            "name", "args", "kwargs", "parent_id", "root_id", "retries", "eta", "expires",
        };

        private readonly Dictionary<string, double> _times = new(StringComparer.Ordinal);
        private readonly List<ClusterTaskEvent> _timeline = [];

        public string Uuid { get; } = uuid;

        public string State { get; private set; } = TaskStates.Pending;

        public string? Name { get; private set; }

        public string? Args { get; private set; }

        public string? Kwargs { get; private set; }

        public string? Result { get; private set; }

        public string? Exception { get; private set; }

        public string? Traceback { get; private set; }

        public double? Runtime { get; private set; }

        public long? Retries { get; private set; }

        public string? Eta { get; private set; }

        public string? Expires { get; private set; }

        public string? RootId { get; private set; }

        public string? ParentId { get; private set; }

        public string? Exchange { get; private set; }

        public string? RoutingKey { get; private set; }

        public long Clock { get; private set; }

        public double? Timestamp { get; private set; }

        public string? Worker { get; set; }

        public string? Client { get; set; }

        /// <summary>Celery's <c>Task.event</c>, with <c>states.precedence</c> deciding whether the event happened before the current state.</summary>
        public void Apply(string subject, CeleryEvent e)
        {
            double timestamp = e.Timestamp;
            string? state = StateOf(subject);
            if (state is not null)
            {
                _times[subject] = timestamp;
            }
            else
            {
                state = subject.ToUpperInvariant();
            }

            if (_timeline.Count >= TimelineMax)
            {
                _timeline.RemoveAt(0);
            }

            _timeline.Add(new ClusterTaskEvent(e.Type, CeleryEvent.FromSeconds(timestamp), e.Clock, e.Hostname));

            // A lower precedence is "happened before": keep the current state and take only what the rule allows.
            if (state != TaskStates.Retry && State != TaskStates.Retry && Precedence(state) > Precedence(State))
            {
                Merge(e, state == TaskStates.Received ? s_receivedKeeps : null);
            }
            else
            {
                Merge(e, null);
                State = state;
                Timestamp = timestamp;
            }
        }

        private void Merge(CeleryEvent e, HashSet<string>? only)
        {
            foreach ((string key, object? value) in e.Fields)
            {
                if (only is not null && !only.Contains(key))
                {
                    continue;
                }

                switch (key)
                {
                    case "name": Name = value as string ?? Name; break;
                    case "args": Args = Text(value) ?? Args; break;
                    case "kwargs": Kwargs = Text(value) ?? Kwargs; break;
                    case "result": Result = Text(value); break;
                    case "exception": Exception = Text(value); break;
                    case "traceback": Traceback = Text(value); break;
                    case "runtime": Runtime = e.GetDouble("runtime"); break;
                    case "retries": Retries = e.GetInt64("retries"); break;
                    case "eta": Eta = value as string; break;
                    case "expires": Expires = value as string; break;
                    case "root_id": RootId = value as string; break;
                    case "parent_id": ParentId = value as string; break;
                    case "exchange": Exchange = value as string; break;
                    case "routing_key": RoutingKey = value as string; break;
                    case "clock": Clock = e.Clock; break;
                    default: break;
                }
            }
        }

        private static string? Text(object? value) => value switch
        {
            null => null,
            string s => s,
            _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture),
        };

        private DateTimeOffset? TimeOf(string subject) => _times.TryGetValue(subject, out double t) ? CeleryEvent.FromSeconds(t) : null;

        public ClusterTask Snapshot() => new()
        {
            Uuid = Uuid,
            State = State,
            Name = Name,
            Args = Args,
            Kwargs = Kwargs,
            Result = Result,
            Exception = Exception,
            Traceback = Traceback,
            Runtime = Runtime,
            Retries = Retries,
            Eta = Eta,
            Expires = Expires,
            RootId = RootId,
            ParentId = ParentId,
            Exchange = Exchange,
            RoutingKey = RoutingKey,
            Clock = Clock,
            Timestamp = Timestamp is { } t ? CeleryEvent.FromSeconds(t) : null,
            Worker = Worker,
            Client = Client,
            Sent = TimeOf("sent"),
            Received = TimeOf("received"),
            Started = TimeOf("started"),
            Succeeded = TimeOf("succeeded"),
            Failed = TimeOf("failed"),
            Retried = TimeOf("retried"),
            Revoked = TimeOf("revoked"),
            Rejected = TimeOf("rejected"),
            Timeline = [.. _timeline],
        };

        /// <summary>Celery's <c>TASK_EVENT_TO_STATE</c>.</summary>
        private static string? StateOf(string subject) => subject switch
        {
            "sent" => TaskStates.Pending,
            "received" => TaskStates.Received,
            "started" => TaskStates.Started,
            "failed" => TaskStates.Failure,
            "retried" => TaskStates.Retry,
            "succeeded" => TaskStates.Success,
            "revoked" => TaskStates.Revoked,
            "rejected" => Rejected,
            _ => null,
        };

        /// <summary>Celery's <c>states.PRECEDENCE</c> index: lower is later (wins); a custom state sits where <c>None</c> does.</summary>
        private static int Precedence(string state) => state switch
        {
            TaskStates.Success => 0,
            TaskStates.Failure => 1,
            TaskStates.Revoked => 3,
            TaskStates.Started => 4,
            TaskStates.Received => 5,
            Rejected => 6,
            TaskStates.Retry => 7,
            TaskStates.Pending => 8,
            _ => 2,
        };
    }

    /// <summary>Entries by key, least recently touched first; the oldest goes once there are more than the limit.</summary>
    private sealed class Lru<T>(int limit)
        where T : class
    {
        private readonly Dictionary<string, LinkedListNode<(string Key, T Value)>> _index = new(StringComparer.Ordinal);
        private readonly LinkedList<(string Key, T Value)> _order = new();

        public IEnumerable<T> Values => _order.Select(n => n.Value);

        public bool TryGet(string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out T? value)
        {
            if (_index.TryGetValue(key, out LinkedListNode<(string Key, T Value)>? node))
            {
                value = node.Value.Value;
                return true;
            }

            value = null;
            return false;
        }

        /// <summary>Adds or moves the entry to the most recent end, dropping the least recent beyond the limit.</summary>
        public void Touch(string key, T value)
        {
            if (_index.TryGetValue(key, out LinkedListNode<(string Key, T Value)>? node))
            {
                _order.Remove(node);
                _order.AddLast(node);
                return;
            }

            _index[key] = _order.AddLast((key, value));
            while (_index.Count > limit && _order.First is { } oldest)
            {
                _order.RemoveFirst();
                _index.Remove(oldest.Value.Key);
            }
        }

        public void Clear()
        {
            _index.Clear();
            _order.Clear();
        }
    }
}

/// <summary>A worker as the cluster state saw it when the snapshot was taken.</summary>
public sealed record ClusterWorker
{
    /// <summary>Its node name.</summary>
    public required string Hostname { get; init; }

    /// <summary>Its process id.</summary>
    public long? Pid { get; init; }

    /// <summary>Its heartbeat interval in seconds (60 until it sends one, as Celery assumes).</summary>
    public double Freq { get; init; }

    /// <summary>Its clock value at its latest worker event.</summary>
    public long Clock { get; init; }

    /// <summary>Tasks running at its latest heartbeat.</summary>
    public long? Active { get; init; }

    /// <summary>Tasks it had processed at its latest heartbeat.</summary>
    public long? Processed { get; init; }

    /// <summary>Its machine's load averages (1, 5, 15 minutes).</summary>
    public IReadOnlyList<double>? LoadAverage { get; init; }

    /// <summary>Its software (<c>py-celery</c>, <c>celeriac</c>).</summary>
    public string? SwIdent { get; init; }

    /// <summary>Its software's version.</summary>
    public string? SwVer { get; init; }

    /// <summary>Its operating system (<c>Linux</c>).</summary>
    public string? SwSys { get; init; }

    /// <summary>When its latest heartbeat (or task event) was received.</summary>
    public DateTimeOffset? LastHeartbeat { get; init; }

    /// <summary>When it counts as offline without another heartbeat: the latest plus twice its <see cref="Freq"/>.</summary>
    public DateTimeOffset? HeartbeatExpires { get; init; }

    /// <summary>Whether it is alive: a heartbeat was received and has not expired, and it did not say it went offline.</summary>
    public bool Alive { get; init; }

    /// <summary><c>ONLINE</c> or <c>OFFLINE</c>, as Celery's <c>status_string</c>.</summary>
    public string Status => Alive ? "ONLINE" : "OFFLINE";
}

/// <summary>A task as the cluster state saw it when the snapshot was taken (Celery's <c>events.state.Task</c>).</summary>
public sealed record ClusterTask
{
    /// <summary>The task id.</summary>
    public required string Uuid { get; init; }

    /// <summary>Its state by Celery's precedence: PENDING (sent), RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED, REJECTED.</summary>
    public required string State { get; init; }

    /// <summary>The task name.</summary>
    public string? Name { get; init; }

    /// <summary>The positional arguments' repr.</summary>
    public string? Args { get; init; }

    /// <summary>The keyword arguments' repr.</summary>
    public string? Kwargs { get; init; }

    /// <summary>The result's repr, once it succeeded.</summary>
    public string? Result { get; init; }

    /// <summary>The exception's repr, once it failed or was retried.</summary>
    public string? Exception { get; init; }

    /// <summary>The traceback of the failure or retry.</summary>
    public string? Traceback { get; init; }

    /// <summary>How long it ran, in seconds, once it succeeded.</summary>
    public double? Runtime { get; init; }

    /// <summary>How many times it had been retried when received.</summary>
    public long? Retries { get; init; }

    /// <summary>Its ETA (ISO 8601), if any.</summary>
    public string? Eta { get; init; }

    /// <summary>Its expiry (ISO 8601), if any.</summary>
    public string? Expires { get; init; }

    /// <summary>The first task of its workflow.</summary>
    public string? RootId { get; init; }

    /// <summary>The task that sent it.</summary>
    public string? ParentId { get; init; }

    /// <summary>The exchange it was sent to (from <c>task-sent</c>).</summary>
    public string? Exchange { get; init; }

    /// <summary>The routing key it was sent with (from <c>task-sent</c>).</summary>
    public string? RoutingKey { get; init; }

    /// <summary>The clock of the event that set its fields last.</summary>
    public long Clock { get; init; }

    /// <summary>When its current state was reached.</summary>
    public DateTimeOffset? Timestamp { get; init; }

    /// <summary>The worker's hostname.</summary>
    public string? Worker { get; init; }

    /// <summary>The client's hostname (from <c>task-sent</c>).</summary>
    public string? Client { get; init; }

    /// <summary>When it was sent.</summary>
    public DateTimeOffset? Sent { get; init; }

    /// <summary>When a worker received it.</summary>
    public DateTimeOffset? Received { get; init; }

    /// <summary>When it started.</summary>
    public DateTimeOffset? Started { get; init; }

    /// <summary>When it succeeded.</summary>
    public DateTimeOffset? Succeeded { get; init; }

    /// <summary>When it failed.</summary>
    public DateTimeOffset? Failed { get; init; }

    /// <summary>When it was last retried.</summary>
    public DateTimeOffset? Retried { get; init; }

    /// <summary>When it was revoked.</summary>
    public DateTimeOffset? Revoked { get; init; }

    /// <summary>When it was rejected.</summary>
    public DateTimeOffset? Rejected { get; init; }

    /// <summary>Its events in the order they were applied (at most the latest 100).</summary>
    public IReadOnlyList<ClusterTaskEvent> Timeline { get; init; } = [];

    /// <summary>Whether its state is final (SUCCESS, FAILURE, REVOKED).</summary>
    public bool Ready => State is TaskStates.Success or TaskStates.Failure or TaskStates.Revoked;
}

/// <summary>One event of a task's timeline.</summary>
/// <param name="Type">The event type.</param>
/// <param name="Timestamp">When it happened.</param>
/// <param name="Clock">The sender's clock.</param>
/// <param name="Hostname">The sender.</param>
public sealed record ClusterTaskEvent(string Type, DateTimeOffset Timestamp, long Clock, string? Hostname);
