using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Celeriac.Protocol;
using Celeriac.Results;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac;

/// <summary>
/// A Celeriac application: its options, its tasks, its connections to the broker and the result backend.
/// Hold one per process (or register it with <c>AddCeleriac</c>); there is no static current app.
/// Connections open on first use and close when the app is disposed, after pending publishes are flushed.
/// </summary>
public sealed partial class CeleriacApp : IAsyncDisposable, ICanvasApp, ICeleriacClient
{
    private readonly Lock _gate = new();
    private ITransport? _transport;
    private IResultBackend? _backend;
    private bool _frozen;
    private bool _disposed;
    private readonly HashSet<string> _declaredQueues = new(StringComparer.Ordinal);

    /// <summary>Creates an app from options as given (no files or environment read).</summary>
    public CeleriacApp(CeleriacOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        Signals = new CeleriacSignals(() => LoggerFactory.CreateLogger("Celeriac.Signals"));
        Origin = $"gen{Environment.ProcessId}@{Environment.MachineName}";
    }

    /// <summary>
    /// Creates an app: the defaults, then <paramref name="configure"/>, then <c>appsettings.json</c>'s
    /// <c>Celeriac</c> section, then environment variables (<c>CELERIAC_*</c>), read as a host reads them
    /// (<see cref="CeleriacSettings"/>).
    /// </summary>
    public static CeleriacApp Create(Action<CeleriacOptions>? configure = null) => Create([], configure);

    /// <summary>
    /// Creates an app as <see cref="Create(Action{CeleriacOptions})"/> does, with the command line last
    /// (<c>--Celeriac:Concurrency=4</c>, <c>--Celeriac:BrokerUrl=redis://...</c>).
    /// </summary>
    public static CeleriacApp Create(string[] args, Action<CeleriacOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = new CeleriacOptions();
        configure?.Invoke(options);
        CeleriacSettings.Bind(options, CeleriacSettings.BuildConfiguration(args: args));
        return new CeleriacApp(options);
    }

    /// <summary>The options; change them only before the first publish or worker start.</summary>
    public CeleriacOptions Options { get; }

    /// <summary>The registered tasks.</summary>
    public TaskRegistry Tasks { get; } = new();

    /// <summary>Celery's signals (<c>task_prerun</c>, <c>task_success</c>, <c>worker_ready</c>, ...) as .NET events.</summary>
    public CeleriacSignals Signals { get; }

    private readonly CancellationTokenSource _disposing = new();

    /// <summary>The URL schemes this app can use.</summary>
    public ProviderRegistry Providers { get; } = new();

    /// <summary>The <c>origin</c> header this app writes (<c>gen&lt;pid&gt;@&lt;host&gt;</c>).</summary>
    public string Origin { get; }

    /// <summary>The client's reply address (<c>reply_to</c>), one per app as Celery's <c>oid</c>.</summary>
    public string ReplyTo { get; } = Guid.NewGuid().ToString();

    /// <summary>
    /// The app's Lamport clock (Celery's <c>app.clock</c>): every event the app or its worker sends moves it on, and
    /// every event an <c>EventReceiver</c> of the app reads moves it past the sender's.
    /// </summary>
    public Events.LamportClock Clock { get; } = new();

    internal ILoggerFactory LoggerFactory => Options.LoggerFactory ?? NullLoggerFactory.Instance;

    internal TimeProvider Time => Options.TimeProvider;

    /// <summary>Registers a task whose code is a delegate: <c>app.Task("tasks.add", (int x, int y) =&gt; x + y)</c>.</summary>
    [RequiresUnreferencedCode(ReflectionTaskInvoker.Why)]
    [RequiresDynamicCode(ReflectionTaskInvoker.Why)]
    public CeleriacTask Task(string name, Delegate handler, TaskOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(handler);
        var task = new CeleriacTask(this, name, options ?? new TaskOptions(), new ReflectionTaskInvoker(name, handler.Method, handler.Target, null));
        Tasks.Add(task);
        return task;
    }

    /// <summary>Registers a task from a method; instance methods run on an instance of <paramref name="type"/> from DI.</summary>
    [RequiresUnreferencedCode(ReflectionTaskInvoker.Why)]
    [RequiresDynamicCode(ReflectionTaskInvoker.Why)]
    public CeleriacTask Task(string name, MethodInfo method, Type? type = null, TaskOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(method);
        var task = new CeleriacTask(this, name, options ?? new TaskOptions(), new ReflectionTaskInvoker(name, method, null, type ?? method.DeclaringType));
        Tasks.Add(task);
        return task;
    }

    /// <summary>A handle on a task that runs elsewhere (another process or language), to call it by name.</summary>
    public CeleriacTask Signature(string name, TaskOptions? options = null) => new(this, name, options ?? new TaskOptions(), null);

    /// <summary>Registers a task whose code is an invoker (what generated code calls: no reflection).</summary>
    public CeleriacTask Task(string name, TaskInvoker invoker, TaskOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(invoker);
        var task = new CeleriacTask(this, name, options ?? new TaskOptions(), invoker);
        Tasks.Add(task);
        return task;
    }

    /// <summary>Registers a task declared with <see cref="CeleriacTaskAttribute"/> whose code is a (generated) invoker.</summary>
    public CeleriacTask Task(CeleriacTaskAttribute attribute, TaskInvoker invoker)
    {
        ArgumentNullException.ThrowIfNull(attribute);
        return Task(attribute.Name, invoker, OptionsOf(attribute));
    }

    /// <summary>
    /// Registers every method and class marked <see cref="CeleriacTaskAttribute"/> in an assembly; returns how many.
    /// Tasks the source generator saw run through its invokers (no reflection); the others are found by reflection.
    /// </summary>
    [RequiresUnreferencedCode(ReflectionTaskInvoker.Why)]
    [RequiresDynamicCode(ReflectionTaskInvoker.Why)]
    public int AddTasksFromAssembly(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        int count = 0;
        HashSet<string> generated = new(StringComparer.Ordinal);
        if (GeneratedTasks.TryGet(assembly, out GeneratedTasks.Entry? entry))
        {
            count += entry.AddTo(this);
            generated.UnionWith(entry.Names);
            if (entry.Complete)
            {
                return count;
            }
        }

        foreach ((CeleriacTaskAttribute attribute, MethodInfo method, Type type) in TaskRegistry.Scan(assembly))
        {
            if (generated.Contains(attribute.Name))
            {
                continue;
            }

            Task(attribute.Name, method, type, OptionsOf(attribute));
            count++;
        }

        return count;
    }

    private static TaskOptions OptionsOf(CeleriacTaskAttribute attribute) => new()
    {
        Queue = attribute.Queue,
        AcksLate = attribute.AcksLate ? true : null,
        IgnoreResult = attribute.IgnoreResult,
        AutoRetryFor = attribute.AutoRetryFor,
        MaxRetries = attribute.MaxRetries < 0 ? null : attribute.MaxRetries,
        DefaultRetryDelay = TimeSpan.FromSeconds(attribute.DefaultRetryDelaySeconds),
        RetryBackoff = attribute.RetryBackoffSeconds > 0 ? TimeSpan.FromSeconds(attribute.RetryBackoffSeconds) : null,
        RetryBackoffMax = TimeSpan.FromSeconds(attribute.RetryBackoffMaxSeconds),
        RetryJitter = attribute.RetryJitter,
        RateLimit = attribute.RateLimit,
        TimeLimit = attribute.TimeLimit > 0 ? TimeSpan.FromSeconds(attribute.TimeLimit) : null,
        SoftTimeLimit = attribute.SoftTimeLimit > 0 ? TimeSpan.FromSeconds(attribute.SoftTimeLimit) : null,
    };

    /// <summary>The broker connection (opened on first use).</summary>
    public ITransport Transport
    {
        get
        {
            lock (_gate)
            {
                // A disposed app must not quietly open a new connection and send on it.
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_transport is null)
                {
                    Freeze();
                    _transport = Providers.CreateTransport(new TransportOptions
                    {
                        Url = UrlText.Parse(Options.BrokerUrl, "broker"),
                        VisibilityTimeout = Options.VisibilityTimeout,
                        ConnectTimeout = Options.BrokerConnectTimeout,
                        TimeProvider = Time,
                        LoggerFactory = LoggerFactory,
                    });
                }

                return _transport;
            }
        }
    }

    /// <summary>The result backend (opened on first use).</summary>
    public IResultBackend ResultBackend
    {
        get
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_backend is null)
                {
                    Freeze();
                    string url = WithBackendTls(EffectiveResultBackendUrl);
                    _backend = url.StartsWith("disabled:", StringComparison.OrdinalIgnoreCase)
                        ? new DisabledResultBackend()
                        : Providers.CreateResultBackend(new ResultBackendOptions
                        {
                            Url = UrlText.Parse(url, "result backend"),
                            BrokerUrl = UrlText.Parse(Options.BrokerUrl, "broker"),
                            ReplyTo = ReplyTo,
                            ResultExpires = Options.ResultExpires,
                            ResultExtended = Options.ResultExtended,
                            ConnectTimeout = Options.BrokerConnectTimeout,
                            Settings = new Dictionary<string, string>(Options.ResultBackendSettings, StringComparer.OrdinalIgnoreCase),
                            TimeProvider = Time,
                            LoggerFactory = LoggerFactory,
                        });
                }

                return _backend;
            }
        }
    }

    /// <summary>
    /// The result backend URL in force: the configured one, else the default the broker's provider registered
    /// (<c>rpc://</c> on <c>amqp://</c>), else the broker's store when it can keep results, else none.
    /// </summary>
    public string EffectiveResultBackendUrl
    {
        get
        {
            if (Options.ResultBackend is { Length: > 0 } configured)
            {
                return configured;
            }

            string scheme = UrlText.Parse(Options.BrokerUrl, "broker").Scheme;
            return Providers.DefaultResultBackend(scheme)?.Replace("{broker}", Options.BrokerUrl, StringComparison.Ordinal)
                ?? (Providers.HasResultBackend(scheme) ? Options.BrokerUrl : "disabled://");
        }
    }

    private void Freeze()
    {
        if (!_frozen)
        {
            Options.Validate();

            // Celery's broker_use_ssl, given apart from the URL: folded into it once, so that every use of the broker's
            // URL (the transport, the default result backend, what inspect shows) is the TLS one.
            Options.BrokerUrl = BrokerTls.WithOptions(Options.BrokerUrl, Options.BrokerUseSsl, "BrokerUseSsl");
            _frozen = true;
        }
    }

    /// <summary>A Redis result backend's URL with Celery's <c>redis_backend_use_ssl</c> (a JSON object in <see cref="CeleriacOptions.ResultBackendSettings"/>) folded in.</summary>
    private string WithBackendTls(string url)
    {
        if (!Options.ResultBackendSettings.TryGetValue("redis_backend_use_ssl", out string? json) || string.IsNullOrWhiteSpace(json))
        {
            return url;
        }

        Dictionary<string, string> tls;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            tls = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == System.Text.Json.JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText(), StringComparer.OrdinalIgnoreCase);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException)
        {
            throw new CeleriacConfigurationException($"redis_backend_use_ssl must be an object such as {{\"ssl_ca_certs\": \"/ca.pem\"}}, not {json}: {e.Message}", e);
        }

        return BrokerTls.WithOptions(url, tls, "redis_backend_use_ssl");
    }

    /// <summary>
    /// The queue a task goes to: the explicit queue, else its own queue, else its exact route, else the first
    /// matching pattern route, else the default queue.
    /// </summary>
    public string Route(string taskName, string? explicitQueue = null)
    {
        ArgumentNullException.ThrowIfNull(taskName);
        if (explicitQueue is { Length: > 0 })
        {
            return explicitQueue;
        }

        if (Tasks.TryGet(taskName, out CeleriacTask? task) && task.Options.Queue is { Length: > 0 } own)
        {
            return own;
        }

        // As Celery's MapRoute: an exact name wins over any pattern, whatever the order they were added in.
        if (Options.TaskRoutes.TryGetValue(taskName, out string? exact))
        {
            return exact;
        }

        foreach (KeyValuePair<string, string> route in Options.TaskRoutes)
        {
            if (route.Key.AsSpan().IndexOfAny('*', '?') >= 0 && Glob.IsMatch(route.Key, taskName))
            {
                return route.Value;
            }
        }

        return Options.DefaultQueue;
    }

    /// <summary>Sends a call of a task by name; the task may live in another process or language.</summary>
    public async Task<AsyncResult> SendTaskAsync(string name, IReadOnlyList<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null, ApplyOptions? options = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Eager.Runs(name))
        {
            return await Eager.RunAsync(name, args, kwargs, options, ct).ConfigureAwait(false);
        }

        TransportMessage message = BuildMessage(name, args, kwargs, options, out string queue);
        ITransport transport = Transport;
        await EnsureQueueAsync(transport, queue, ct).ConfigureAwait(false);
        if (ResultBackend is Results.IReplyQueueResultBackend replies)
        {
            await replies.EnsureReplyQueueAsync(ct).ConfigureAwait(false);
        }

        var signal = new TaskSignalEventArgs { TaskId = message.CorrelationId!, TaskName = name, Queue = queue, Message = message };
        Signals.OnBeforeTaskPublish(this, signal);
        System.Diagnostics.Activity? span = PublishTelemetry.Start(message, queue, MessagingSystem);
        try
        {
            await transport.PublishAsync("", queue, [message], ct).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            PublishTelemetry.Stop(span, queue, MessagingSystem, ex);
            throw;
        }

        PublishTelemetry.Stop(span, queue, MessagingSystem, null);
        if (Options.TaskSendSentEvent)
        {
            await SendSentEventAsync(transport, message, queue).ConfigureAwait(false);
        }

        Signals.OnAfterTaskPublish(this, signal);
        var result = new AsyncResult(message.CorrelationId!, ResultBackend) { App = this, Name = name };
        TaskContext.Current?.AddChild(result);
        return result;
    }

    /// <summary>
    /// Sends Celery's <c>task-sent</c> event for a task just published to the default exchange. The task is sent
    /// already, so a broker that refuses the event is logged, not thrown: monitors miss one event, the caller loses nothing.
    /// </summary>
    private async ValueTask SendSentEventAsync(ITransport transport, TransportMessage message, string queue)
    {
        var stamp = new Events.EventStamp(Origin, Events.EventMessages.UtcOffset(Time), Environment.ProcessId, Clock.Forward(), Events.EventMessages.Timestamp(Time.GetUtcNow()));
        byte[] body = Events.EventMessages.TaskSent(stamp, message.Headers, queue, "", queue);
        try
        {
            await transport.PublishAsync(Events.EventMessages.Exchange, "task.sent", [Events.EventMessages.Message(Origin, body)], CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Diagnostics.Log.EventsNotSent(LoggerFactory.CreateLogger("Celeriac.Events"), 1, "task-sent", ex);
        }
    }

    /// <summary>
    /// Revokes tasks by id, as <c>app.control.revoke</c> does: every worker (Celeriac or Celery) listening on the
    /// broker's <c>celery.pidbox</c> remembers the ids and skips those tasks when they come, storing REVOKED.
    /// A task already running goes on.
    /// </summary>
    public Task RevokeAsync(IEnumerable<string> taskIds, CancellationToken ct = default) => RevokeAsync(taskIds, terminate: false, ct);

    /// <summary>
    /// Revokes tasks by id; with <paramref name="terminate"/> (Celery's <c>terminate=True</c>) a worker running one of
    /// them now cancels it (its <see cref="TaskContext.CancellationToken"/>) and stores it as REVOKED ("terminated").
    /// </summary>
    public async Task RevokeAsync(IEnumerable<string> taskIds, bool terminate, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        string[] ids = [.. taskIds];
        if (ids.Length == 0)
        {
            return;
        }

        var arguments = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["task_id"] = ids.Cast<object?>().ToList(),
            ["terminate"] = terminate,
            ["signal"] = "SIGTERM",
        };
        await BroadcastAsync("revoke", arguments, destination: null, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Changes a task's rate limit on running workers (Celeriac or Celery), as <c>app.control.rate_limit</c> does:
    /// <c>"100/s"</c>, <c>"10/m"</c>, <c>"1000/h"</c> or a number per second; <see langword="null"/> removes it.
    /// <paramref name="destination"/> names the workers (node names), or all when <see langword="null"/>. No reply is
    /// awaited; a worker that does not know the task or the rate logs it and keeps its limit.
    /// </summary>
    public async Task SetRateLimitAsync(string taskName, string? rateLimit, IReadOnlyList<string>? destination = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(taskName);
        var arguments = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["task_name"] = taskName,
            ["rate_limit"] = rateLimit,
        };
        await BroadcastAsync("rate_limit", arguments, destination, ct).ConfigureAwait(false);
    }

    /// <summary>Publishes a remote-control request on <c>celery.pidbox</c>, wanting no reply.</summary>
    private async Task BroadcastAsync(string method, Dictionary<string, object?> arguments, IReadOnlyList<string>? destination, CancellationToken ct)
    {
        // A worker drops a request that is stale on arrival: give it a few seconds, not Celery's one.
        TransportMessage request = Control.Mailbox.Request(method, arguments, destination, replyTo: null, Time, TimeSpan.FromSeconds(5));
        await Transport.PublishAsync(Control.Mailbox.Exchange, "", [SignIfOn(request)], ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Builds the protocol v2 message of a call exactly as <see cref="SendTaskAsync"/> would, and picks its queue
    /// (<see cref="Route"/>), without sending it: for publishing many calls in one batch with
    /// <see cref="ITransport.PublishAsync"/>. Nothing else of a send happens: the queue is not declared and the publish
    /// signals are not raised. The task id is the message's <see cref="TransportMessage.CorrelationId"/>.
    /// </summary>
    public TransportMessage BuildMessage(string name, IReadOnlyList<object?>? args, IReadOnlyDictionary<string, object?>? kwargs, ApplyOptions? options, out string queue) =>
        BuildMessage(name, args, kwargs, options, null, null, out queue);

    /// <summary>Builds a call's message with the canvas parts of its body (callbacks, chain, chord) and a caller's reply address.</summary>
    internal TransportMessage BuildMessage(string name, IReadOnlyList<object?>? args, IReadOnlyDictionary<string, object?>? kwargs, ApplyOptions? options, TaskEmbed? embed, string? replyTo, out string queue)
    {
        options ??= s_noOptions;
        string id = options.TaskId ?? Guid.NewGuid().ToString();
        DateTimeOffset now = Time.GetUtcNow();

        // As Celery's apply_async: the call's options, else the registered task's (time limits, ignore_result).
        TaskOptions? defined = Tasks.TryGet(name, out CeleriacTask? t) ? t.Options : null;

        // As Celery: a task sent from inside a running task is its child, in the same tree.
        TaskContext? parent = TaskContext.Current;
        var headers = new TaskHeaders
        {
            Task = name,
            Id = id,
            Shadow = options.Shadow,
            Eta = options.Eta ?? (options.Countdown is { } countdown ? now + countdown : null),
            Expires = options.Expires ?? (options.ExpiresIn is { } expiresIn ? now + expiresIn : null),
            HardTimeLimit = (options.TimeLimit ?? defined?.TimeLimit)?.TotalSeconds,
            SoftTimeLimit = (options.SoftTimeLimit ?? defined?.SoftTimeLimit)?.TotalSeconds,
            RootId = options.RootId ?? parent?.RootId ?? parent?.Id ?? id,
            ParentId = options.ParentId ?? parent?.Id,
            Group = options.GroupId,
            GroupIndex = options.GroupIndex,
            Origin = Origin,
            IgnoreResult = options.IgnoreResult || defined is { IgnoreResult: true },
        };
        if (options.Headers is not null)
        {
            foreach (KeyValuePair<string, object?> kv in options.Headers)
            {
                headers.Extra[kv.Key] = kv.Value;
            }
        }

        queue = Route(name, options.Queue);

        // Celery also sends expires as the message TTL ('expiration', in ms; 0 when already past).
        string? expiration = headers.Expires is { } expires
            ? ((long)Math.Max(0, (expires - now).TotalMilliseconds)).ToString(System.Globalization.CultureInfo.InvariantCulture)
            : null;
        return SignIfOn(TaskMessage.Encode(headers, args, kwargs, embed, replyTo ?? ReplyTo, options.Priority, expiration));
    }

    private static readonly ApplyOptions s_noOptions = new();

    internal async ValueTask EnsureQueueAsync(ITransport transport, string queue, CancellationToken ct)
    {
        lock (_gate)
        {
            if (_declaredQueues.Contains(queue))
            {
                return;
            }
        }

        await transport.DeclareQueueAsync(Options.DeclarationOf(queue), ct).ConfigureAwait(false);
        lock (_gate)
        {
            _declaredQueues.Add(queue);
        }
    }

    private CanvasRunner? _canvas;

    private string? _messagingSystem;

    /// <summary>The broker as OpenTelemetry's <c>messaging.system</c> names it (<c>redis</c>, <c>rabbitmq</c>, ...).</summary>
    internal string MessagingSystem => _messagingSystem ??= Diagnostics.CeleriacDiagnostics.SystemOf(Options.BrokerUrl);

    private EagerRunner? _eager;

    /// <summary>Runs calls here and now when <see cref="CeleriacOptions.TaskAlwaysEager"/> is on.</summary>
    internal EagerRunner Eager => _eager ??= new EagerRunner(this);

    /// <summary>Sends signatures as Celery's canvas does.</summary>
    internal CanvasRunner Canvas => _canvas ??= new CanvasRunner(this);

    /// <summary>
    /// Sends a signature of any shape (Celery's <c>sig.apply_async(args, kwargs, **options)</c>): a task, a chain (the
    /// last task's result), a group (a <see cref="GroupResult"/>), a chord (the body's result), chunks or a map.
    /// </summary>
    public async Task<AsyncResult> ApplyAsync(Signature signature, IEnumerable<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null, ApplyOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(signature);
        if (Options.TaskAlwaysEager)
        {
            return await Eager.ApplyAsync(signature, args, kwargs, options?.TaskId, ct).ConfigureAwait(false);
        }

        TaskContext? parent = TaskContext.Current;
        return await Canvas.ApplyAsync(signature, args, kwargs, options.ToJson(), parent is null ? null : parent.AddChild, ct).ConfigureAwait(false)
            ?? throw new InvalidOperationException("Cannot apply an empty chain");
    }

    /// <summary>A signature of a task by name, bound to this app: <c>app.Signature("tasks.add", 2, 2)</c>.</summary>
    public Signature Sig(string name, params object?[] args) => Signature(name).S(args);

    /// <summary>A handle on a task's result by id (in eager mode, on the results of eager runs).</summary>
    public AsyncResult AsyncResult(string taskId) => new(taskId, ReadBackend) { App = this };

    /// <summary>Where results are read by id: the eager store in eager mode, else the result backend.</summary>
    internal IResultBackend ReadBackend => Options.TaskAlwaysEager ? Eager.Backend : ResultBackend;

    /// <inheritdoc />
    public Task<GroupResult?> RestoreGroupAsync(string groupId, CancellationToken ct = default) => GroupResult.RestoreAsync(this, groupId, ct);

    /// <summary>Cancelled as the app is disposed: background work on its connections (a control client's listener) ends first.</summary>
    public CancellationToken Disposing => _disposing.Token;

    /// <summary>Flushes pending publishes and result writes, then closes the connections.</summary>
    public async ValueTask DisposeAsync()
    {
        await _disposing.CancelAsync().ConfigureAwait(false);
        ITransport? transport;
        IResultBackend? backend;
        lock (_gate)
        {
            _disposed = true;
            transport = _transport;
            backend = _backend;
            _transport = null;
            _backend = null;
        }

        if (transport is not null)
        {
            await transport.DisposeAsync().ConfigureAwait(false);
        }

        if (backend is not null && !ReferenceEquals(backend, transport))
        {
            await backend.DisposeAsync().ConfigureAwait(false);
        }
    }
}
