using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Celeriac.Diagnostics;
using Celeriac.Protocol;
using Celeriac.Transport;

namespace Celeriac.Worker;

/// <summary>
/// What remote control reads and changes in a running worker, in the shapes Celery's worker replies with:
/// <c>Request.info()</c> for held tasks, <c>stats</c>, <c>active_queues</c>, <c>conf</c>; and the queues, task events and
/// shutdown it changes.
/// </summary>
public sealed partial class CeleriacWorker
{
    private readonly ConcurrentDictionary<string, long> _totals = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string?> _rateTexts = new(StringComparer.Ordinal);
    private Action? _requestStop;
    private readonly Lock _queueGate = new();
    private volatile CancellationTokenSource? _consumeSwap;
    private DateTimeOffset _startedAt;

    /// <summary>Counts a task the worker starts (Celery's <c>total</c> in <c>stats</c>).</summary>
    private void CountAccepted(string name) => _totals.AddOrUpdate(name, 1, static (_, n) => n + 1);

    /// <summary>
    /// Celery's <c>Request.info()</c> of each held request in <paramref name="state"/>. A reserved message whose ETA is
    /// still ahead (taken, not yet decoded) is not listed: it is scheduled, as in Celery, whose consumer puts such a
    /// message on its timer as it receives it.
    /// </summary>
    private List<object?> RequestInfos(RequestState state, bool safe) =>
        [.. _registry.Held(state).Where(r => state != RequestState.Reserved || PendingEta(r) is null).Select(r => Info(r, safe)).Where(i => i is not null)];

    private List<object?> ScheduledInfos()
    {
        var list = new List<object?>();
        foreach (WorkerRequest r in _registry.Held(null))
        {
            DateTimeOffset? eta = r.State switch
            {
                RequestState.Scheduled => r.ScheduledFor ?? r.Message?.Headers.Eta,
                RequestState.Reserved => PendingEta(r),
                _ => null,
            };
            if ((r.State == RequestState.Scheduled || eta is not null) && Info(r, safe: false) is { } info)
            {
                // Celery's timer entries for ETA requests have priority 6.
                list.Add(new Dictionary<string, object?>(StringComparer.Ordinal) { ["eta"] = eta is { } e ? CeleryJson.FormatIso(e) : null, ["priority"] = 6L, ["request"] = info });
            }
        }

        return list;
    }

    /// <summary>
    /// The ETA of a reserved request that is still ahead, read from the message, decoded or not. The consumer
    /// schedules a message whose headers give an ETA as it takes it, so this covers the moment between its taking and
    /// its decoding.
    /// </summary>
    private DateTimeOffset? PendingEta(WorkerRequest r)
    {
        try
        {
            DateTimeOffset? eta = r.Message is { } m ? m.Headers.Eta
                : CeleryJson.TryParseIso(Header(r.Delivery.Message, "eta"), out DateTimeOffset parsed) ? parsed : null;
            return eta > _app.Time.GetUtcNow() ? eta : null;
        }
        catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
        {
            return null; // settled and released while being read
        }
    }

    /// <summary>Celery's <c>query_task</c>: <c>{id: [state, info]}</c> for the ids this worker holds.</summary>
    private Dictionary<string, object?> QueryTasks(IReadOnlyList<string> ids)
    {
        var wanted = new HashSet<string>(ids, StringComparer.Ordinal);
        var found = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (WorkerRequest r in _registry.Held(null))
        {
            if (Info(r, safe: false) is { } info && info["id"] is string id && wanted.Contains(id))
            {
                found[id] = new List<object?> { r.State == RequestState.Active ? "active" : "reserved", info };
            }
        }

        return found;
    }

    /// <summary>One request as Celery's <c>Request.info(safe)</c>, or <see langword="null"/> when it ended meanwhile.</summary>
    private Dictionary<string, object?>? Info(WorkerRequest r, bool safe)
    {
        try
        {
            TransportMessage? raw = r.Delivery.Message;
            TaskMessage? m = r.Message;
            string? id = m?.Headers.Id ?? Header(raw, "id");
            if (id is null)
            {
                return null;
            }

            object? args;
            object? kwargs;
            if (m is not null)
            {
                args = safe ? m.Headers.ArgsRepr ?? PythonRepr.OfTuple(m.Args) : m.Args.Clone();
                kwargs = safe ? m.Headers.KwargsRepr ?? PythonRepr.Of(m.Kwargs) : m.Kwargs.Clone();
            }
            else
            {
                (args, kwargs) = RawArguments(raw, safe);
            }

            string name = m?.Headers.Task ?? Header(raw, "task") ?? "";
            bool active = r.State == RequestState.Active;
            return new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["id"] = id,
                ["name"] = name,
                ["args"] = args,
                ["kwargs"] = kwargs,
                ["type"] = name,
                ["hostname"] = _node,
                ["time_start"] = r.StartedAt is { } started ? started.ToUnixTimeMilliseconds() / 1000.0 : null,
                ["acknowledged"] = r.Delivery.IsSettled,
                ["delivery_info"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["exchange"] = raw?.Exchange ?? "",
                    ["routing_key"] = raw is { RoutingKey.Length: > 0 } ? raw.RoutingKey : r.Delivery.Queue,
                    ["priority"] = (long)(raw?.Priority ?? 0),
                    ["redelivered"] = r.Delivery.Redelivered,
                },
                ["worker_pid"] = active ? (long)Environment.ProcessId : null,
            };
        }
        catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
        {
            return null; // settled and released while being read
        }
    }

    /// <summary>The arguments of a message the worker has not decoded yet, read from its body <c>[args, kwargs, embed]</c>.</summary>
    private static (object? Args, object? Kwargs) RawArguments(TransportMessage? raw, bool safe)
    {
        if (raw is null)
        {
            return (null, null);
        }

        try
        {
            using JsonDocument doc = JsonDocument.Parse(raw.Body, new JsonDocumentOptions { MaxDepth = JsonValues.MaxDepth });
            if (doc.RootElement.ValueKind == JsonValueKind.Array && doc.RootElement.GetArrayLength() >= 2)
            {
                JsonElement args = doc.RootElement[0];
                JsonElement kwargs = doc.RootElement[1];
                return safe ? (PythonRepr.OfTuple(args), PythonRepr.Of(kwargs)) : (args.Clone(), kwargs.Clone());
            }
        }
        catch (JsonException)
        {
            // Bad input: the intake fails it when a slot takes it.
        }

        return (null, null);
    }

    private static string? Header(TransportMessage? raw, string key) =>
        raw is not null && raw.Headers.TryGetValue(key, out object? v) ? v as string : null;

    /// <summary>Celery's <c>registered</c>: sorted names, without <c>celery.*</c> unless <paramref name="builtins"/>, with the asked attributes in brackets.</summary>
    private List<object?> RegisteredInfos(IReadOnlyList<string> items, bool builtins)
    {
        IReadOnlyList<string> fields = items.Count > 0 ? items : ["exchange", "routing_key", "rate_limit"];
        var list = new List<object?>();
        foreach (string taskName in _app.Tasks.Names)
        {
            if (!builtins && taskName.StartsWith("celery.", StringComparison.Ordinal) || !_app.Tasks.TryGet(taskName, out CeleriacTask? task))
            {
                continue;
            }

            (TimeSpan? soft, TimeSpan? hard) = _timeLimitsSetAtRunTime.TryGetValue(taskName, out (TimeSpan? Soft, TimeSpan? Hard) set) ? set : (task.Options.SoftTimeLimit, task.Options.TimeLimit);

            var parts = new List<string>();
            foreach (string field in fields)
            {
                string? value = field switch
                {
                    "name" => task.Name,
                    "rate_limit" => _rateTexts.TryGetValue(taskName, out string? text) ? text : task.Options.RateLimit,
                    "queue" => task.Options.Queue,
                    "acks_late" => task.Options.AcksLate is { } late ? (late ? "True" : "False") : null,
                    "time_limit" => hard is { } h ? TimeLimits.Format(h) : null,
                    "soft_time_limit" => soft is { } sl ? TimeLimits.Format(sl) : null,
                    "max_retries" => task.Options.MaxRetries?.ToString(CultureInfo.InvariantCulture),
                    _ => null,
                };
                if (value is not null)
                {
                    parts.Add(field + "=" + value);
                }
            }

            list.Add(parts.Count == 0 ? task.Name : $"{task.Name} [{string.Join(' ', parts)}]");
        }

        return list;
    }

    /// <summary>Celery's <c>stats</c>: totals, pid, clock, uptime, pool, broker, prefetch count and resource usage.</summary>
    private Dictionary<string, object?> Stats()
    {
        using var process = Process.GetCurrentProcess();
        var pool = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["implementation"] = "celeriac:" + _pool.Name,
            ["max-concurrency"] = (long)Concurrency,
            ["processes"] = new List<object?> { (long)Environment.ProcessId },
            ["max-tasks-per-child"] = _app.Options.MaxTasksPerChild is { } perChild ? (long)perChild : "N/A",
            ["put-guarded-by-semaphore"] = false,
            ["timeouts"] = new List<object?> { _app.Options.TaskSoftTimeLimit?.TotalSeconds ?? 0.0, _app.Options.TaskTimeLimit?.TotalSeconds ?? 0.0 },
        };
        if (_autoscaler is { } scaler)
        {
            pool["autoscaler"] = new Dictionary<string, object?>(StringComparer.Ordinal) { ["max"] = (long)scaler.Max, ["min"] = (long)scaler.Min, ["qty"] = (long)Concurrency };
        }

        return new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["total"] = _totals.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal),
            ["pid"] = (long)Environment.ProcessId,
            ["clock"] = _app.Clock.Value.ToString(CultureInfo.InvariantCulture),
            ["uptime"] = (long)(_app.Time.GetUtcNow() - _startedAt).TotalSeconds,
            ["pool"] = pool,
            ["broker"] = BrokerInfo(_app.Options.BrokerUrl),
            ["prefetch_count"] = (long)_prefetch,
            ["rusage"] = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["utime"] = process.UserProcessorTime.TotalSeconds,
                ["stime"] = process.PrivilegedProcessorTime.TotalSeconds,
                ["maxrss"] = process.PeakWorkingSet64 / 1024,
            },
        };
    }

    /// <summary>kombu's <c>Connection.info()</c> of the broker URL (password left out).</summary>
    private static Dictionary<string, object?> BrokerInfo(string url)
    {
        Uri.TryCreate(url, UriKind.Absolute, out Uri? uri);
        string scheme = uri?.Scheme ?? url.Split(':')[0];
        string? user = uri is { UserInfo.Length: > 0 } ? Uri.UnescapeDataString(uri.UserInfo.Split(':')[0]) : null;
        string path = uri?.AbsolutePath.TrimStart('/') ?? "";
        return new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["hostname"] = uri is { Host.Length: > 0 } ? uri.Host : null,
            ["userid"] = user,
            ["virtual_host"] = scheme is "redis" or "rediss" ? (path.Length == 0 ? "0" : path) : path.Length == 0 ? "/" : Uri.UnescapeDataString(path),
            ["port"] = uri is { Port: > 0 } ? (long)uri.Port : null,
            ["insist"] = false,
            ["ssl"] = scheme is "rediss" or "amqps",
            ["transport"] = scheme,
            ["connect_timeout"] = 4L,
            ["transport_options"] = new Dictionary<string, object?>(),
            ["login_method"] = null,
            ["uri_prefix"] = null,
            ["heartbeat"] = 120.0,
            ["failover_strategy"] = "round-robin",
            ["alternates"] = new List<object?>(),
        };
    }

    /// <summary>Celery's <c>active_queues</c>: kombu's <c>Queue.as_dict(recurse=True)</c> of each consumed queue.</summary>
    private List<object?> ActiveQueues()
    {
        var list = new List<object?>();
        foreach (string name in _queues)
        {
            QueueDeclaration q = _app.Options.DeclarationOf(name);
            list.Add(new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["name"] = q.Name,
                ["exchange"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["name"] = q.Exchange.Length == 0 ? q.Name : q.Exchange,
                    ["type"] = q.ExchangeType ?? "direct",
                    ["arguments"] = null,
                    ["durable"] = true,
                    ["passive"] = false,
                    ["auto_delete"] = false,
                    ["delivery_mode"] = null,
                    ["no_declare"] = false,
                },
                ["routing_key"] = q.RoutingKey ?? q.Name,
                ["queue_arguments"] = q.MaxPriority is { } max ? new Dictionary<string, object?> { ["x-max-priority"] = (long)max } : q.Quorum ? new Dictionary<string, object?> { ["x-queue-type"] = "quorum" } : null,
                ["binding_arguments"] = null,
                ["consumer_arguments"] = null,
                ["durable"] = true,
                ["exclusive"] = false,
                ["auto_delete"] = false,
                ["no_ack"] = false,
                ["alias"] = null,
                ["bindings"] = new List<object?>(),
                ["no_declare"] = null,
                ["expires"] = null,
                ["message_ttl"] = null,
                ["max_length"] = null,
                ["max_length_bytes"] = null,
                ["max_priority"] = q.MaxPriority is { } p ? (long)p : null,
            });
        }

        return list;
    }

    /// <summary>Celery's <c>conf</c>: the worker's settings under Celery's names (URLs without their passwords).</summary>
    private Dictionary<string, object?> Conf(bool withDefaults)
    {
        CeleriacOptions o = _app.Options;
        var all = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["broker_url"] = UrlText.Mask(o.BrokerUrl),
            ["result_backend"] = o.ResultBackend is { } backend ? UrlText.Mask(backend) : null,
            ["task_default_queue"] = o.DefaultQueue,
            ["task_queues"] = o.Queues.Count == 0 ? null : o.Queues.Cast<object?>().ToList(),
            ["task_routes"] = o.TaskRoutes.Count == 0 ? null : o.TaskRoutes.ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal),
            ["task_serializer"] = "json",
            ["result_serializer"] = "json",
            ["accept_content"] = new List<object?> { "json" },
            ["task_acks_late"] = o.AcksLate,
            ["task_acks_on_failure_or_timeout"] = o.AcksOnFailureOrTimeout,
            ["task_reject_on_worker_lost"] = o.RejectOnWorkerLost,
            ["task_track_started"] = o.TrackStarted,
            ["task_time_limit"] = o.TaskTimeLimit?.TotalSeconds,
            ["task_soft_time_limit"] = o.TaskSoftTimeLimit?.TotalSeconds,
            ["task_send_sent_event"] = o.TaskSendSentEvent,
            ["result_expires"] = o.ResultExpires?.TotalSeconds,
            ["result_extended"] = o.ResultExtended,
            ["worker_concurrency"] = (long)o.Concurrency,
            ["worker_prefetch_multiplier"] = (long)o.PrefetchMultiplier,
            ["worker_pool"] = o.Pool,
            ["worker_autoscaler"] = o.Autoscale,
            ["worker_max_tasks_per_child"] = o.MaxTasksPerChild is { } t ? (long)t : null,
            ["worker_max_memory_per_child"] = o.MaxMemoryPerChild is { } mem ? (long)mem : null,
            ["worker_send_task_events"] = TaskEventsEnabled,
            ["worker_state_db"] = o.StateDb,
            ["worker_soft_shutdown_timeout"] = o.SoftShutdownTimeout.TotalSeconds,
            ["broker_transport_options"] = new Dictionary<string, object?>(StringComparer.Ordinal) { ["visibility_timeout"] = o.VisibilityTimeout.TotalSeconds },
            ["task_queue_max_priority"] = o.QueueMaxPriority is { } qp ? (long)qp : null,
        };

        // Celery's conf.table(with_defaults=False) lists only what was set: here, what is not empty.
        return withDefaults ? all : all.Where(kv => kv.Value is not null and not false).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
    }

    /// <summary>Celery's <c>report</c>: what a bug report wants to know.</summary>
    private string Report()
    {
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"software -> celeriac:{typeof(CeleriacApp).Assembly.GetName().Version} (dotnet) runtime:{Environment.Version}\n");
        text.Append(CultureInfo.InvariantCulture, $"platform -> system:{Environment.OSVersion.Platform} arch:{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} os:{System.Runtime.InteropServices.RuntimeInformation.OSDescription}\n");
        text.Append(CultureInfo.InvariantCulture, $"loader -> Celeriac\nsettings -> transport:{BrokerInfo(_app.Options.BrokerUrl)["transport"]} results:{(_app.Options.ResultBackend is { } b ? UrlText.Mask(b) : "(broker's)")}\n\n");
        foreach (KeyValuePair<string, object?> kv in Conf(withDefaults: false))
        {
            text.Append(CultureInfo.InvariantCulture, $"{kv.Key}: {JsonSerializer.Serialize(kv.Value, CeleryJson.Options.GetTypeInfo(kv.Value?.GetType() ?? typeof(object)))}\n");
        }

        return text.ToString();
    }

    /// <summary>Celery's <c>add_consumer</c>: declares the queue and consumes it too, from the next delivery on.</summary>
    private async ValueTask<string> AddConsumerAsync(string queue, string? exchange, string? exchangeType, string? routingKey)
    {
        QueueDeclaration declaration = exchange is null
            ? _app.Options.DeclarationOf(queue)
            : new QueueDeclaration(queue, exchange, routingKey ?? queue, exchangeType ?? "direct", _app.Options.QueueMaxPriority);
        await _app.Transport.DeclareQueueAsync(declaration).ConfigureAwait(false);
        lock (_queueGate)
        {
            if (!_queues.Contains(queue, StringComparer.Ordinal))
            {
                _queues = [.. _queues, queue];
                _consumeSwap?.Cancel();
                Log.ConsumerAdded(_logger, queue);
            }
        }

        return $"add consumer {queue}";
    }

    /// <summary>Celery's <c>cancel_consumer</c>: stops taking from the queue (what it holds already still runs).</summary>
    private string CancelConsumer(string queue)
    {
        lock (_queueGate)
        {
            if (_queues.Contains(queue, StringComparer.Ordinal))
            {
                _queues = [.. _queues.Where(q => q != queue)];
                _consumeSwap?.Cancel();
                Log.ConsumerCancelled(_logger, queue);
            }
        }

        return $"no longer consuming from {queue}";
    }

    /// <summary>Celery's <c>enable_events</c> / <c>disable_events</c>: task events on or off while the worker runs.</summary>
    private string SwitchTaskEvents(bool on)
    {
        lock (_queueGate)
        {
            if (on == (_taskEvents is not null))
            {
                return on ? "task events already enabled" : "task events already disabled";
            }

            _taskEvents = on ? _events ??= new Events.EventDispatcher(_app, _node) : null;
        }

        Log.TaskEventsSwitched(_logger, on ? "enabled" : "disabled");
        return on ? "task events enabled" : "task events disabled";
    }
}
