namespace Celeriac;

/// <summary>
/// The settings of a Celeriac app and the effective settings of its worker (see <see cref="CeleriacWorkerOptions"/>).
/// Each mirrors a Celery setting (named in its doc). Precedence, lowest first: these defaults, code
/// (<c>CeleriacApp.Create(o =&gt; ...)</c> or <c>AddCeleriac(o =&gt; ...)</c>, then <c>AddWorker(w =&gt; ...)</c>), the
/// <c>Celeriac</c> section of <c>appsettings.json</c>, environment variables (<c>CELERIAC_*</c>), the command line, all
/// read by <see cref="CeleriacSettings"/>.
/// </summary>
public sealed class CeleriacOptions
{
    /// <summary>The default broker and result store: a SQLite file in the working directory.</summary>
    public const string DefaultUrl = "sqlite:///celeriac.db";

    /// <summary>Broker URL (<c>CELERIAC_BROKER_URL</c>; Celery's <c>broker_url</c>). <value>sqlite:///celeriac.db</value></summary>
    public string BrokerUrl { get; set; } = DefaultUrl;

    /// <summary>
    /// Result backend URL (<c>CELERIAC_RESULT_BACKEND</c>; Celery's <c>result_backend</c>). When unset, the broker's
    /// store keeps results if it can (memory, SQLite, Redis); <c>disabled://</c> stores none. <value>null</value>
    /// </summary>
    public string? ResultBackend { get; set; }

    /// <summary>Queue of tasks with no route (<c>CELERIAC_DEFAULT_QUEUE</c>; <c>task_default_queue</c>). <value>celery</value></summary>
    public string DefaultQueue { get; set; } = "celery";

    /// <summary>How long results are kept (<c>CELERIAC_RESULT_EXPIRES</c>, seconds; <c>result_expires</c>). <value>1 day</value></summary>
    public TimeSpan? ResultExpires { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// Messages prefetched per pool slot (<c>CELERIAC_PREFETCH_MULTIPLIER</c>; <c>worker_prefetch_multiplier</c>); 0 means
    /// no limit, as in Celery. <value>4</value>
    /// </summary>
    public int PrefetchMultiplier { get; set; } = 4;

    /// <summary>
    /// Prefetch off (<c>CELERIAC_DISABLE_PREFETCH</c>; Celery 5.5's <c>worker_disable_prefetch</c>, which Celery honours on
    /// Redis only): the worker takes a message only when a slot is free to run it, even with early acks, so a long task
    /// never waits behind a busy slot while another worker is idle. <see cref="PrefetchMultiplier"/> is then unused.
    /// Tasks with an ETA still wait in the worker's timer. <value>false</value>
    /// </summary>
    public bool DisablePrefetch { get; set; }

    /// <summary>Ack after the task ran instead of before (<c>CELERIAC_ACKS_LATE</c>; <c>task_acks_late</c>). <value>false</value></summary>
    public bool AcksLate { get; set; }

    /// <summary>The worker's hard time limit per task (<c>CELERIAC_TASK_TIME_LIMIT</c>, seconds; <c>task_time_limit</c>). <value>none</value></summary>
    public TimeSpan? TaskTimeLimit { get; set; }

    /// <summary>The worker's soft time limit per task (<c>CELERIAC_TASK_SOFT_TIME_LIMIT</c>, seconds; <c>task_soft_time_limit</c>). <value>none</value></summary>
    public TimeSpan? TaskSoftTimeLimit { get; set; }

    /// <summary>Ack late-acked tasks that failed or timed out (<c>CELERIAC_ACKS_ON_FAILURE_OR_TIMEOUT</c>; <c>task_acks_on_failure_or_timeout</c>). <value>true</value></summary>
    public bool AcksOnFailureOrTimeout { get; set; } = true;

    /// <summary>
    /// What a cold shutdown does to a late-acked task it cuts off (<c>CELERIAC_REJECT_ON_WORKER_LOST</c>;
    /// <c>task_reject_on_worker_lost</c>): <see langword="false"/>, as in Celery, stores FAILURE
    /// (<c>WorkerLostError</c>) and acks the message, so a task that brings its worker down does not loop for ever;
    /// <see langword="true"/> gives the message back to the queue to run again. <value>false</value>
    /// </summary>
    public bool RejectOnWorkerLost { get; set; }

    /// <summary>
    /// How long a cold shutdown waits for the running tasks it cancelled (<c>CELERIAC_COLD_SHUTDOWN_GRACE</c>, seconds).
    /// A task still running then ignores its token; it is settled as lost (see <see cref="RejectOnWorkerLost"/>) and
    /// abandoned, so the worker stops (Celery kills its children at once). <value>10 seconds</value>
    /// </summary>
    public TimeSpan ColdShutdownGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A file that keeps the revoked task ids across restarts (<c>CELERIAC_STATEDB</c>; Celery's <c>--statedb</c>).
    /// <value>none</value>
    /// </summary>
    public string? StateDb { get; set; }

    /// <summary>Tasks run at once by a worker (<c>CELERIAC_CONCURRENCY</c>; <c>worker_concurrency</c>). <value>the core count</value></summary>
    public int Concurrency { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// Where tasks run (<c>CELERIAC_POOL</c>; Celery's <c>worker_pool</c>, <c>-P</c>): <c>async</c> (in the worker's async
    /// flow), <c>threads</c> (a dedicated thread per slot, for code that blocks), <c>prefork</c> or <c>processes</c>
    /// (child processes: a crash or a hard time limit kills only the child) or <c>solo</c> (one task at a time).
    /// <c>eventlet</c> and <c>gevent</c> are taken as <c>async</c>. <value>async</value>
    /// </summary>
    public string Pool { get; set; } = "async";

    /// <summary>
    /// Autoscale (<c>CELERIAC_AUTOSCALE</c>; Celery's <c>--autoscale MAX,MIN</c>): the pool grows towards MAX while
    /// requests wait for a slot and shrinks towards MIN once idle for <see cref="AutoscaleKeepAlive"/>;
    /// <see cref="Concurrency"/> is then unused. <value>none</value>
    /// </summary>
    public string? Autoscale { get; set; }

    /// <summary>How long the pool stays grown before autoscale shrinks it (Celery's <c>AUTOSCALE_KEEPALIVE</c>). <value>30 seconds</value></summary>
    public TimeSpan AutoscaleKeepAlive { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// On a warm stop, how long running tasks get to finish before the cold stop begins
    /// (<c>CELERIAC_SOFT_SHUTDOWN_TIMEOUT</c>, seconds; Celery 5.5's <c>worker_soft_shutdown_timeout</c>); a late-acked task
    /// cut off then goes back to the queue. 0: a warm stop waits for running tasks however long they take. <value>0</value>
    /// </summary>
    public TimeSpan SoftShutdownTimeout { get; set; }

    /// <summary>The prefork pool replaces a child after this many tasks (<c>CELERIAC_MAX_TASKS_PER_CHILD</c>; <c>worker_max_tasks_per_child</c>). <value>none</value></summary>
    public int? MaxTasksPerChild { get; set; }

    /// <summary>
    /// The prefork pool replaces a child, after its task, once its resident memory exceeds this many KiB
    /// (<c>CELERIAC_MAX_MEMORY_PER_CHILD</c>; <c>worker_max_memory_per_child</c>). <value>none</value>
    /// </summary>
    public int? MaxMemoryPerChild { get; set; }

    /// <summary>Store STARTED when a task starts (<c>CELERIAC_TRACK_STARTED</c>; <c>task_track_started</c>). <value>false</value></summary>
    public bool TrackStarted { get; set; }

    /// <summary>
    /// Task events (<c>CELERIAC_TASK_EVENTS</c>; <c>-E</c>, <c>--task-events</c>; Celery's <c>worker_send_task_events</c>):
    /// the worker sends <c>task-received</c>, <c>task-started</c>, <c>task-succeeded</c>, <c>task-failed</c>,
    /// <c>task-retried</c>, <c>task-revoked</c> and <c>task-rejected</c> on the <c>celeryev</c> exchange, for
    /// <c>celery events</c>, Flower and <c>EventReceiver</c>. Off, the hot path pays one flag check. <value>false</value>
    /// </summary>
    public bool TaskEvents { get; set; }

    /// <summary>
    /// No worker events (<c>CELERIAC_WITHOUT_HEARTBEAT</c>; <c>--without-heartbeat</c>, as Celery's): as Celery's, a
    /// worker sends <c>worker-online</c>, a <c>worker-heartbeat</c> every <see cref="HeartbeatInterval"/> and
    /// <c>worker-offline</c> whether or not task events are on, so monitors see it alive; this turns them off.
    /// <value>false</value>
    /// </summary>
    public bool WithoutHeartbeat { get; set; }

    /// <summary>
    /// No mingle at start-up (<c>CELERIAC_WITHOUT_MINGLE</c>; <c>--without-mingle</c>, as Celery's). As Celery's, a worker
    /// on Redis or AMQP first asks the others (<c>hello</c>, for up to a second) for the ids they revoked and their clock,
    /// so that a revoke made before it started holds on it too. <value>false</value>
    /// </summary>
    public bool WithoutMingle { get; set; }

    /// <summary>
    /// The IANA time zone calendar schedules are reckoned in when their entry names none (<c>CELERIAC_TIMEZONE</c>;
    /// Celery's <c>timezone</c>). <value>UTC</value>
    /// </summary>
    public string Timezone { get; set; } = "UTC";

    /// <summary>
    /// Where beat keeps its entries, their last runs and its lease (<c>CELERIAC_BEAT_SCHEDULE</c>; <c>--schedule</c>):
    /// <c>sqlite:///path</c>, <c>redis://...</c> or <c>memory://</c>. By default a SQLite file next to a SQLite broker's
    /// (<c>celeriac-beat.db</c>), the broker's own Redis, else <c>celeriac-beat.db</c> in the working directory.
    /// <value>null</value>
    /// </summary>
    public string? BeatScheduleUrl { get; set; }

    /// <summary>
    /// The longest beat sleeps between looks at its store (<c>CELERIAC_BEAT_MAX_INTERVAL</c>; <c>--max-interval</c>): an
    /// entry added, changed or disabled in the store takes effect within it. <value>5 seconds</value>
    /// </summary>
    public TimeSpan BeatMaxInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long beat's lease lasts without renewal (<c>CELERIAC_BEAT_LEASE_TIME</c>): when the beat that sends dies,
    /// another takes over within it. <value>5 seconds</value>
    /// </summary>
    public TimeSpan BeatLeaseTime { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How late a run may be sent: a run that fell due longer ago than this is missed, and its entry's catch-up policy
    /// decides (<c>CELERIAC_BEAT_MISFIRE_GRACE</c>). <value>2 seconds</value>
    /// </summary>
    public TimeSpan BeatMisfireGrace { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Periodic entries in Celery's <c>beat_schedule</c> shape, by name (the <c>BeatSchedule</c> object of the
    /// <c>Celeriac</c> configuration section): <c>{"task", "schedule", "args", "kwargs", "options", "timezone", "catch_up"}</c>.
    /// </summary>
    public IDictionary<string, System.Text.Json.JsonElement> BeatSchedule { get; } = new Dictionary<string, System.Text.Json.JsonElement>(StringComparer.Ordinal);

    /// <summary>
    /// Settings of the result backend in force, under Celery's names (<c>s3_bucket</c>, <c>s3_endpoint_url</c>,
    /// <c>database_table_names</c>, <c>azureblockblob_container_name</c>, ...; the <c>ResultBackendSettings</c> object
    /// of the <c>Celeriac</c> configuration section). A query parameter of the backend URL of the same name wins.
    /// </summary>
    public IDictionary<string, string> ResultBackendSettings { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// TLS to the broker, as Celery's <c>broker_use_ssl</c> (the <c>BrokerUseSsl</c> object of the <c>Celeriac</c>
    /// configuration section): <c>ssl_cert_reqs</c>, <c>ssl_ca_certs</c>, <c>ssl_certfile</c>, <c>ssl_keyfile</c>,
    /// <c>ssl_check_hostname</c>, as the URL's query takes them. Any entry turns TLS on: a <c>redis://</c> broker is
    /// reached as <c>rediss://</c>, an <c>amqp://</c> one as <c>amqps://</c>. An option the URL gives too keeps the
    /// URL's value. For a Redis result backend, Celery's <c>redis_backend_use_ssl</c> goes in <see cref="ResultBackendSettings"/>.
    /// </summary>
    public IDictionary<string, string> BrokerUseSsl { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// How often a worker sends <c>worker-heartbeat</c> (<c>CELERIAC_HEARTBEAT_INTERVAL</c>, seconds;
    /// <c>--heartbeat-interval</c>, as Celery's); monitors take a worker as offline after two intervals without one.
    /// <value>2 seconds</value>
    /// </summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// A client sends a <c>task-sent</c> event for each task it sends (<c>CELERIAC_TASK_SEND_SENT_EVENT</c>; Celery's
    /// <c>task_send_sent_event</c>), so monitors see tasks before a worker takes them. <value>false</value>
    /// </summary>
    public bool TaskSendSentEvent { get; set; }

    /// <summary>Store name, args, kwargs, worker, retries and queue with results (<c>CELERIAC_RESULT_EXTENDED</c>; <c>result_extended</c>). <value>false</value></summary>
    public bool ResultExtended { get; set; }

    /// <summary>
    /// How long a taken, unacked message stays hidden before it is delivered again when its worker died
    /// (<c>CELERIAC_VISIBILITY_TIMEOUT</c>, seconds; <c>broker_transport_options.visibility_timeout</c>). <value>1 hour</value>
    /// </summary>
    public TimeSpan VisibilityTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How long a send or a result read waits for a broker or result backend that has never answered before it throws
    /// <see cref="BrokerUnreachableException"/> (<c>CELERIAC_BROKER_CONNECT_TIMEOUT</c>, seconds; Celery's
    /// <c>broker_connection_timeout</c>). Once connected, a store that goes away for a while (a restart) is waited for
    /// longer, as before. <value>5 seconds</value>
    /// </summary>
    public TimeSpan BrokerConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The highest message priority the queues honour (<c>CELERIAC_QUEUE_MAX_PRIORITY</c>; Celery's
    /// <c>task_queue_max_priority</c>): on RabbitMQ the queues are declared with <c>x-max-priority</c>, and a higher
    /// number is served first. Redis and SQLite always honour priorities 0–9, a lower number first (kombu's meaning
    /// there). <value>null</value>
    /// </summary>
    public int? QueueMaxPriority { get; set; }

    /// <summary>
    /// The kind of queue declared on RabbitMQ (<c>CELERIAC_QUEUE_TYPE</c>; Celery 5.5's <c>task_default_queue_type</c>):
    /// <c>classic</c> or <c>quorum</c> (replicated; no priorities, and prefetch is counted per consumer). <value>classic</value>
    /// </summary>
    public string QueueType { get; set; } = "classic";

    /// <summary>Queues the worker consumes (<c>CELERIAC_QUEUES</c>, comma-separated; <c>-Q</c>). Empty means the default queue.</summary>
    public IList<string> Queues { get; } = [];

    /// <summary>The worker's node name (<c>CELERIAC_HOSTNAME</c>; <c>-n</c>). <value>celeriac@&lt;machine&gt;</value></summary>
    public string? NodeName { get; set; }

    /// <summary>
    /// Routes from task name to queue (<c>task_routes</c>): an exact name, or a glob with <c>*</c> and <c>?</c>
    /// (<c>"reports.*"</c>), as Celery's fnmatch routes. An exact name wins; among globs the first added wins;
    /// a task's own queue option wins over routes.
    /// </summary>
    public IDictionary<string, string> TaskRoutes { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Message signing (Celery's <c>auth</c> serializer): key, certificate, trusted store, digest. <value>off</value></summary>
    public SecurityOptions Security { get; } = new();

    /// <summary>The clock used for ETA, expiry and result dates. <value>TimeProvider.System</value></summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Logging. <value>no logging</value></summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Where tasks resolve their dependencies; each run gets its own scope. <value>null</value></summary>
    public IServiceProvider? Services { get; set; }

    /// <summary>
    /// Celery's <c>task_always_eager</c>: a call of a task registered in this app (<c>DelayAsync</c>, <c>SendTaskAsync</c>,
    /// <c>ApplyAsync</c> of a signature) runs it here and now, and returns a result that is already there; nothing is
    /// sent. Chains run in order, groups one by one, a chord's body after its header; a retry runs again at once.
    /// For tests. A task not registered here is sent as usual, as Celery's <c>send_task</c> does. <value>false</value>
    /// </summary>
    public bool TaskAlwaysEager { get; set; }

    /// <summary>
    /// Celery's <c>task_eager_propagates</c>: with <see cref="TaskAlwaysEager"/>, a task's exception is thrown by the call
    /// itself instead of being stored as FAILURE (which <c>GetAsync</c> throws as <see cref="TaskFailedException"/>). <value>false</value>
    /// </summary>
    public bool TaskEagerPropagates { get; set; }

    /// <summary>The queues a worker consumes and <c>purge</c> empties: <see cref="Queues"/>, or the <see cref="DefaultQueue"/> when it is empty.</summary>
    public IReadOnlyList<string> EffectiveQueues => Queues.Count > 0 ? [.. Queues] : [DefaultQueue];

    /// <summary>How the queue <paramref name="queue"/> is declared: bound to the direct exchange of its own name, as Celery does.</summary>
    internal Transport.QueueDeclaration DeclarationOf(string queue) =>
        new(queue, queue, queue, MaxPriority: QueueMaxPriority, Quorum: string.Equals(QueueType, "quorum", StringComparison.OrdinalIgnoreCase));

    /// <summary>The worker's node name, defaulted.</summary>
    internal string EffectiveNodeName => string.IsNullOrWhiteSpace(NodeName) ? "celeriac@" + Environment.MachineName : NodeName.Replace("%h", Environment.MachineName, StringComparison.Ordinal);

    /// <summary>Reads <c>MAX,MIN</c> (or just <c>MAX</c>, MIN then 0 as in Celery, taken as 1).</summary>
    public static bool TryParseAutoscale(string? text, out int max, out int min)
    {
        max = min = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        string[] parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length is < 1 or > 2 || !int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out max))
        {
            return false;
        }

        if (parts.Length == 2 && !int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out min))
        {
            return false;
        }

        min = Math.Max(1, min);
        return max >= min;
    }

    /// <summary>Checks the values; throws <see cref="CeleriacConfigurationException"/> naming the bad one.</summary>
    public void Validate()
    {
        UrlText.Parse(BrokerUrl, "broker");
        if (ResultBackend is not null)
        {
            UrlText.Parse(ResultBackend, "result backend");
        }

        if (Concurrency < 1)
        {
            throw new CeleriacConfigurationException($"Concurrency must be at least 1 (got {Concurrency}).");
        }

        if (PrefetchMultiplier < 0)
        {
            throw new CeleriacConfigurationException($"PrefetchMultiplier: the prefetch multiplier must be 0 (unlimited) or more (got {PrefetchMultiplier}).");
        }

        if (string.IsNullOrWhiteSpace(DefaultQueue))
        {
            throw new CeleriacConfigurationException("DefaultQueue: the default queue name is empty.");
        }

        if (QueueMaxPriority is < 1 or > 255)
        {
            throw new CeleriacConfigurationException($"QueueMaxPriority: the queue max priority must be between 1 and 255 (got {QueueMaxPriority}).");
        }

        if (!string.Equals(QueueType, "classic", StringComparison.OrdinalIgnoreCase) && !string.Equals(QueueType, "quorum", StringComparison.OrdinalIgnoreCase))
        {
            throw new CeleriacConfigurationException($"QueueType: the queue type must be classic or quorum (got '{QueueType}').");
        }

        if (string.Equals(QueueType, "quorum", StringComparison.OrdinalIgnoreCase) && QueueMaxPriority is not null)
        {
            throw new CeleriacConfigurationException("QueueType, QueueMaxPriority: quorum queues have no priorities: unset the queue max priority or use classic queues.");
        }

        if (ColdShutdownGrace < TimeSpan.Zero)
        {
            throw new CeleriacConfigurationException($"ColdShutdownGrace: the cold shutdown grace cannot be negative (got {ColdShutdownGrace}).");
        }

        if (!Celeriac.Concurrency.PoolNames.IsKnown(Pool))
        {
            throw new CeleriacConfigurationException($"Pool: unknown pool '{Pool}': use async, threads, prefork (processes) or solo.");
        }

        if (Autoscale is not null && !TryParseAutoscale(Autoscale, out _, out _))
        {
            throw new CeleriacConfigurationException($"Autoscale: must be MAX,MIN with 1 <= MIN <= MAX (got '{Autoscale}').");
        }

        if (SoftShutdownTimeout < TimeSpan.Zero)
        {
            throw new CeleriacConfigurationException($"SoftShutdownTimeout: the soft shutdown timeout cannot be negative (got {SoftShutdownTimeout}).");
        }

        if (MaxTasksPerChild is < 1 || MaxMemoryPerChild is < 1)
        {
            throw new CeleriacConfigurationException($"MaxTasksPerChild, MaxMemoryPerChild: the max tasks and max memory per child must be at least 1 when set (got {MaxTasksPerChild?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, {MaxMemoryPerChild?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}).");
        }

        if (HeartbeatInterval <= TimeSpan.Zero)
        {
            throw new CeleriacConfigurationException($"HeartbeatInterval: the heartbeat interval must be positive (got {HeartbeatInterval}).");
        }

        if (VisibilityTimeout <= TimeSpan.Zero)
        {
            throw new CeleriacConfigurationException($"VisibilityTimeout: the visibility timeout must be positive (got {VisibilityTimeout}).");
        }

        if (BrokerConnectTimeout <= TimeSpan.Zero)
        {
            throw new CeleriacConfigurationException($"The broker connect timeout must be positive (got {BrokerConnectTimeout}).");
        }
    }
}
