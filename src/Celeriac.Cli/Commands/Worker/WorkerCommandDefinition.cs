using System.CommandLine;
using System.CommandLine.Parsing;
using Celeriac.Cli.Logging;
using Microsoft.Extensions.Logging;

namespace Celeriac.Cli.Commands.Worker;

/// <summary><c>celeriac worker</c>: its options.</summary>
internal sealed class WorkerCommandDefinition : Command
{
    public WorkerCommandDefinition(CliContext context) : base("worker", "Start a worker: consume the queues and run their tasks. SIGTERM or Ctrl+C is a warm shutdown (finish running tasks); a second Ctrl+C is a cold one.")
    {
        LogLevelOption.Validators.Add(ValidateLevel);
        ConcurrencyOption.CustomParser = CommonOptions.ParseInt;
        PrefetchMultiplierOption.CustomParser = CommonOptions.ParseInt;
        MaxTasksPerChildOption.CustomParser = CommonOptions.ParseInt;
        MaxMemoryPerChildOption.CustomParser = CommonOptions.ParseInt;
        SoftShutdownTimeoutOption.CustomParser = CommonOptions.ParseSeconds;
        HeartbeatIntervalOption.CustomParser = CommonOptions.ParseSeconds;
        PoolOption.Validators.Add(static r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "async";
            if (!Celeriac.Concurrency.PoolNames.IsKnown(text))
            {
                r.AddError($"Invalid pool '{text}' for --pool (choose from async, threads, prefork, processes, solo, eventlet, gevent)");
            }
        });
        AutoscaleOption.Validators.Add(static r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
            if (!CeleriacOptions.TryParseAutoscale(text, out _, out _))
            {
                r.AddError($"Invalid value '{text}' for --autoscale: use MAX,MIN with 1 <= MIN <= MAX (e.g. 8,2)");
            }
        });
        Options.Add(AppOption);
        Options.Add(QueuesOption);
        Options.Add(ConcurrencyOption);
        Options.Add(LogLevelOption);
        Options.Add(HostnameOption);
        Options.Add(PrefetchMultiplierOption);
        Options.Add(DisablePrefetchOption);
        Options.Add(AcksLateOption);
        Options.Add(StateDbOption);
        Options.Add(PoolOption);
        Options.Add(AutoscaleOption);
        Options.Add(SoftShutdownTimeoutOption);
        Options.Add(MaxTasksPerChildOption);
        Options.Add(MaxMemoryPerChildOption);
        Options.Add(TaskEventsOption);
        Options.Add(WithoutHeartbeatOption);
        Options.Add(WithoutMingleOption);
        Options.Add(BeatOption);
        Options.Add(ScheduleOption);
        Options.Add(HeartbeatIntervalOption);
        SetAction((parse, ct) => WorkerCommand.RunAsync(context, this, parse, ct));
    }

    public Option<string?> AppOption { get; } = new("--app", "-A")
    {
        Description = "An assembly whose [CeleriacTask] methods and classes to register: a path to its .dll, or its name.",
        HelpName = "ASSEMBLY",
    };

    public Option<string[]> QueuesOption { get; } = CommonOptions.Queues("Queues to consume, comma-separated and/or repeated (default: the default queue, 'celery').");

    public Option<int?> ConcurrencyOption { get; } = new("--concurrency", "-c")
    {
        Description = "Tasks run at once (default: the number of CPUs).",
        HelpName = "N",
    };

    public Option<string> LogLevelOption { get; } = new("--loglevel", "-l")
    {
        Description = "Logging level: debug, info, warning, error, critical. 'info' prints a line per task.",
        HelpName = "LEVEL",
        DefaultValueFactory = static _ => "warning",
    };

    /// <summary>The parsed <c>--loglevel</c> (validated, so always known).</summary>
    public LogLevel GetLogLevel(ParseResult parse) =>
        CliLogging.TryParseLevel(parse.GetValue(LogLevelOption), out LogLevel level) ? level : LogLevel.Warning;

    public Option<string?> HostnameOption { get; } = new("--hostname", "-n")
    {
        Description = "The node name; %h is the host name, %n its first label, %d its domain (default: celeriac@%h).",
        HelpName = "NAME",
    };

    public Option<int?> PrefetchMultiplierOption { get; } = new("--prefetch-multiplier")
    {
        Description = "Messages prefetched per slot; 0 means no limit (default: 4).",
        HelpName = "N",
    };

    public Option<bool> DisablePrefetchOption { get; } = new("--disable-prefetch")
    {
        Description = "Take a message only when a slot is free to run it (prefetch off; --prefetch-multiplier is then unused).",
    };

    public Option<bool> AcksLateOption { get; } = new("--acks-late")
    {
        Description = "Ack a message after its task ran, not before (at-least-once).",
    };

    public Option<string?> StateDbOption { get; } = new("--statedb")
    {
        Description = "A file that keeps the revoked task ids across restarts (created if missing).",
        HelpName = "FILE",
    };

    public Option<string?> PoolOption { get; } = new("--pool", "-P")
    {
        Description = "Where tasks run: async (default), threads (a thread each, for blocking code), prefork or processes (child processes), solo (one at a time). eventlet and gevent run as async.",
        HelpName = "POOL",
    };

    public Option<string?> AutoscaleOption { get; } = new("--autoscale")
    {
        Description = "Grow the pool up to MAX while tasks wait, shrink it back to MIN when idle (--concurrency is then unused).",
        HelpName = "MAX,MIN",
    };

    public Option<double?> SoftShutdownTimeoutOption { get; } = new("--soft-shutdown-timeout")
    {
        Description = "On a warm shutdown, seconds running tasks get to finish before the cold shutdown; late-acked tasks cut off then go back to the queue (default: 0, wait for them).",
        HelpName = "SECONDS",
    };

    public Option<int?> MaxTasksPerChildOption { get; } = new("--max-tasks-per-child")
    {
        Description = "Prefork: replace a child process after this many tasks.",
        HelpName = "N",
    };

    public Option<int?> MaxMemoryPerChildOption { get; } = new("--max-memory-per-child")
    {
        Description = "Prefork: replace a child process after a task that leaves it above this many KiB of resident memory.",
        HelpName = "KIB",
    };

    public Option<bool> TaskEventsOption { get; } = new("--task-events", "-E", "--events")
    {
        Description = "Send task events (task-received, -started, -succeeded, ...) on the celeryev exchange, for celery events, Flower and Celeriac's EventReceiver.",
    };

    public Option<bool> WithoutHeartbeatOption { get; } = new("--without-heartbeat")
    {
        Description = "Send no worker events (worker-online, worker-heartbeat, worker-offline), which are sent by default, as by Celery's workers.",
    };

    public Option<bool> BeatOption { get; } = new("--beat", "-B")
    {
        Description = "Also run beat, the periodic task scheduler, in this worker (any number of -B workers still send each run once).",
    };

    public Option<string?> ScheduleOption { get; } = new("--schedule", "-s")
    {
        Description = "With -B: the schedule store (sqlite:///path, redis://host:port/db, memory://).",
        HelpName = "STORE_URL",
    };

    public Option<bool> WithoutMingleOption { get; } = new("--without-mingle")
    {
        Description = "Do not ask the other workers at start-up for the task ids they revoked (mingle, as Celery's workers do on Redis and AMQP).",
    };

    public Option<double?> HeartbeatIntervalOption { get; } = new("--heartbeat-interval")
    {
        Description = "Seconds between worker-heartbeat events (default: 2); monitors take a worker as offline after two intervals without one.",
        HelpName = "SECONDS",
    };

    private static void ValidateLevel(OptionResult result)
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "warning";
        if (!CliLogging.TryParseLevel(text, out _))
        {
            result.AddError($"Invalid log level '{text}' for --loglevel (choose from debug, info, warning, error, critical)");
        }
    }
}
