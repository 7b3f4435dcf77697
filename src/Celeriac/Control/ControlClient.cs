using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Celeriac.Protocol;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;

namespace Celeriac.Control;

/// <summary>
/// Celery's <c>app.control</c>: sends remote-control commands over the broker's <c>celery.pidbox</c> to every worker
/// (Celeriac or Celery) or to the named ones, and gathers their replies from this client's reply queue
/// (<c>&lt;oid&gt;.reply.celery.pidbox</c>, bound to <c>reply.celery.pidbox</c> by the oid, as kombu's). Replies are
/// gathered until <see cref="ControlOptions.Timeout"/> has passed or <see cref="ControlOptions.Limit"/> have come.
/// Get it as <c>app.Control</c>.
/// </summary>
#pragma warning disable CA1001 // One client per app, for the app's life; its listener's token source is disposed when the last waiter leaves.
public sealed class ControlClient : ICeleriacControl
#pragma warning restore CA1001
{
    /// <summary>Celery's default reply timeout (<c>celery inspect -t</c>).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(1);

    private static readonly ConditionalWeakTable<CeleriacApp, ControlClient> s_clients = [];

    private readonly CeleriacApp _app;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, ChannelWriter<ControlReply>> _waiting = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private static readonly TimeSpan s_linger = TimeSpan.FromSeconds(10);
    private int _users;
    private int _idleGeneration;
    private CancellationTokenSource? _stopListening;
    private Task _listening = Task.CompletedTask;

    private ControlClient(CeleriacApp app)
    {
        _app = app;
        _logger = app.LoggerFactory.CreateLogger("Celeriac.Control");
        Oid = Guid.NewGuid().ToString();
    }

    /// <summary>This client's id: the routing key of its replies.</summary>
    public string Oid { get; }

    /// <summary>The queue its replies come to.</summary>
    public string ReplyQueue => Oid + "." + Mailbox.ReplyExchange;

    /// <summary>The app's client (one per app, so that its reply queue is one).</summary>
    public static ControlClient For(CeleriacApp app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return s_clients.GetValue(app, static a => new ControlClient(a));
    }

    /// <summary>An inspector of the workers <paramref name="options"/> name (all when none).</summary>
    public Inspector Inspect(ControlOptions? options = null) => new(this, options ?? new ControlOptions());

    /// <summary>
    /// Sends <paramref name="command"/> with <paramref name="arguments"/>; with <see cref="ControlOptions.Reply"/>,
    /// returns the replies that came in time, in arrival order.
    /// </summary>
    public async Task<IReadOnlyList<ControlReply>> BroadcastAsync(string command, IReadOnlyDictionary<string, object?>? arguments = null, ControlOptions? options = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        options ??= new ControlOptions();
        arguments ??= new Dictionary<string, object?>(StringComparer.Ordinal);
        TimeSpan timeout = options.Timeout ?? DefaultTimeout;
        ITransport transport = _app.Transport;
        if (!options.Reply)
        {
            // Workers drop a request that is stale on arrival: give it a few seconds, not the reply timeout.
            TransportMessage cast = Mailbox.Request(command, arguments, options.Destination, replyTo: null, _app.Time, TimeSpan.FromSeconds(5));
            await transport.PublishAsync(Mailbox.Exchange, "", [_app.SignIfOn(cast)], ct).ConfigureAwait(false);
            return [];
        }

        string ticket = Guid.NewGuid().ToString();
        var inbox = Channel.CreateUnbounded<ControlReply>(new UnboundedChannelOptions { SingleReader = true });
        _waiting[ticket] = inbox.Writer;
        try
        {
            await StartListeningAsync(transport, ct).ConfigureAwait(false);
        }
        catch
        {
            _waiting.TryRemove(ticket, out _);
            throw;
        }

        try
        {
            TransportMessage request = Mailbox.Request(command, arguments, options.Destination, Oid, _app.Time, timeout, ticket);
            await transport.PublishAsync(Mailbox.Exchange, "", [_app.SignIfOn(request)], ct).ConfigureAwait(false);
            int? limit = options.Limit ?? options.Destination?.Count;
            var replies = new List<ControlReply>();
            // A network wait, as a socket's timeout: on the real clock, so that an app on a fake clock (tests) still
            // gets its replies gathered and a worker's mingle ends.
            using var window = new CancellationTokenSource(timeout);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(window.Token, ct);
            while (limit is null || replies.Count < limit)
            {
                try
                {
                    replies.Add(await inbox.Reader.ReadAsync(linked.Token).ConfigureAwait(false));
                }
                catch (OperationCanceledException) when (window.IsCancellationRequested && !ct.IsCancellationRequested)
                {
                    break;
                }
            }

            return replies;
        }
        finally
        {
            _waiting.TryRemove(ticket, out _);
            await StopListeningAsync(options.KeepListening).ConfigureAwait(false);
        }
    }

    /// <summary>Celery's <c>ping</c>: the workers that answered in time, by node name.</summary>
    public async Task<IReadOnlyDictionary<string, ControlReply>> PingAsync(ControlOptions? options = null, CancellationToken ct = default) =>
        ByNode(await BroadcastAsync("ping", null, Replying(options), ct).ConfigureAwait(false));

    /// <summary>Celery's <c>revoke</c>: the workers skip these tasks when they come; with <paramref name="terminate"/> they also stop them if they run.</summary>
    public Task<IReadOnlyList<ControlReply>> RevokeAsync(IEnumerable<string> taskIds, bool terminate = false, string? signal = null, ControlOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        return BroadcastAsync("revoke", Args(("task_id", taskIds.Cast<object?>().ToList()), ("terminate", terminate), ("signal", signal ?? "SIGTERM")), options, ct);
    }

    /// <summary>Celery's <c>terminate</c>: revoke and stop the running tasks with <paramref name="signal"/>.</summary>
    public Task<IReadOnlyList<ControlReply>> TerminateAsync(IEnumerable<string> taskIds, string signal = "SIGTERM", ControlOptions? options = null, CancellationToken ct = default) =>
        RevokeAsync(taskIds, terminate: true, signal, options, ct);

    /// <summary>Celery's <c>rate_limit</c> (<c>"10/s"</c>, <c>"5/m"</c>; <see langword="null"/> removes the limit).</summary>
    public Task<IReadOnlyList<ControlReply>> RateLimitAsync(string taskName, string? rateLimit, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("rate_limit", Args(("task_name", taskName), ("rate_limit", rateLimit)), options, ct);

    /// <summary>Celery's <c>time_limit</c>: a task's soft and hard limits in seconds (<see langword="null"/>: none).</summary>
    public Task<IReadOnlyList<ControlReply>> TimeLimitAsync(string taskName, double? soft, double? hard = null, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("time_limit", Args(("task_name", taskName), ("soft", soft), ("hard", hard)), options, ct);

    /// <summary>Celery's <c>pool_grow</c>.</summary>
    public Task<IReadOnlyList<ControlReply>> PoolGrowAsync(int n = 1, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("pool_grow", Args(("n", (long)n)), options, ct);

    /// <summary>Celery's <c>pool_shrink</c>.</summary>
    public Task<IReadOnlyList<ControlReply>> PoolShrinkAsync(int n = 1, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("pool_shrink", Args(("n", (long)n)), options, ct);

    /// <summary>Celery's <c>pool_restart</c>.</summary>
    public Task<IReadOnlyList<ControlReply>> PoolRestartAsync(ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("pool_restart", null, options, ct);

    /// <summary>Celery's <c>autoscale</c>: new bounds for workers that autoscale.</summary>
    public Task<IReadOnlyList<ControlReply>> AutoscaleAsync(int max, int min, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("autoscale", Args(("max", (long)max), ("min", (long)min)), options, ct);

    /// <summary>Celery's <c>add_consumer</c>: the workers also consume <paramref name="queue"/>.</summary>
    public Task<IReadOnlyList<ControlReply>> AddConsumerAsync(string queue, string? exchange = null, string? exchangeType = null, string? routingKey = null, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("add_consumer", Args(("queue", queue), ("exchange", exchange), ("exchange_type", exchangeType), ("routing_key", routingKey)), options, ct);

    /// <summary>Celery's <c>cancel_consumer</c>: the workers stop consuming <paramref name="queue"/>.</summary>
    public Task<IReadOnlyList<ControlReply>> CancelConsumerAsync(string queue, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("cancel_consumer", Args(("queue", queue)), options, ct);

    /// <summary>Celery's <c>enable_events</c>: the workers send task events.</summary>
    public Task<IReadOnlyList<ControlReply>> EnableEventsAsync(ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("enable_events", null, options, ct);

    /// <summary>Celery's <c>disable_events</c>.</summary>
    public Task<IReadOnlyList<ControlReply>> DisableEventsAsync(ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("disable_events", null, options, ct);

    /// <summary>Celery's <c>heartbeat</c>: the workers send a heartbeat now.</summary>
    public Task<IReadOnlyList<ControlReply>> HeartbeatAsync(ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("heartbeat", null, options, ct);

    /// <summary>Celery's <c>shutdown</c>: the workers stop warm (Celery's do not reply).</summary>
    public Task<IReadOnlyList<ControlReply>> ShutdownAsync(ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("shutdown", null, options, ct);

    /// <summary>Celery's <c>election</c>.</summary>
    public Task<IReadOnlyList<ControlReply>> ElectionAsync(string id, string topic, string? action = null, ControlOptions? options = null, CancellationToken ct = default) =>
        BroadcastAsync("election", Args(("id", id), ("topic", topic), ("action", action)), options, ct);

    /// <summary>Replies by node (a node that answered twice keeps its first answer).</summary>
    internal static Dictionary<string, ControlReply> ByNode(IEnumerable<ControlReply> replies)
    {
        var byNode = new Dictionary<string, ControlReply>(StringComparer.Ordinal);
        foreach (ControlReply r in replies)
        {
            byNode.TryAdd(r.Node, r);
        }

        return byNode;
    }

    internal static ControlOptions Replying(ControlOptions? options) => (options ?? new ControlOptions()) with { Reply = true };

    /// <summary>A request's keyword arguments from name/value pairs.</summary>
    internal static Dictionary<string, object?> Args(params (string Key, object? Value)[] pairs)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach ((string key, object? value) in pairs)
        {
            d[key] = value;
        }

        return d;
    }

    /// <summary>
    /// Declares the reply queue and, for the first caller, starts the loop that hands replies to their waiters by ticket.
    /// The first caller after a quiet spell waits until the last loop's consumer has gone: RabbitMQ deletes the
    /// auto-delete reply queue when its last consumer leaves, and would take a declaration made meanwhile with it (the
    /// bind then fails with 404, or the new consumer finds no queue). Starts and stops are one at a time.
    /// </summary>
    private async Task StartListeningAsync(ITransport transport, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_stopListening is not null && _listening.IsCompleted)
            {
                // The listener ended on an error: start another.
                _stopListening.Dispose();
                _stopListening = null;
            }

            if (_stopListening is null)
            {
                // A listener that was stopping must have let go of the queue (RabbitMQ deletes an auto-delete queue
                // when its last consumer leaves) before the queue is declared again for the next one.
                await _listening.WaitAsync(ct).ConfigureAwait(false);
            }

            await transport.DeclareQueueAsync(new QueueDeclaration(ReplyQueue, Mailbox.ReplyExchange, Oid, "direct"), ct).ConfigureAwait(false);
            _users++;
            _idleGeneration++;
            if (_stopListening is null)
            {
                _stopListening = CancellationTokenSource.CreateLinkedTokenSource(_app.Disposing);
                CancellationToken stop = _stopListening.Token;
                _listening = Task.Run(() => ListenAsync(transport, stop), CancellationToken.None);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// The last caller lets the loop linger a while before it stops: calls that follow one another (a monitor, a
    /// script) share one listener instead of each waiting for the last one to let go of the queue.
    /// </summary>
    private async Task StopListeningAsync(bool linger)
    {
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (--_users == 0 && _stopListening is { } stop)
            {
                if (!linger)
                {
                    await stop.CancelAsync().ConfigureAwait(false);
                    stop.Dispose();
                    _stopListening = null;
                    return;
                }

                int generation = ++_idleGeneration;
                _ = StopWhenIdleAsync(stop, generation);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task StopWhenIdleAsync(CancellationTokenSource stop, int generation)
    {
        try
        {
            await Task.Delay(s_linger, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            // Still idle since this caller left, and still the same listener.
            if (_users == 0 && generation == _idleGeneration && ReferenceEquals(_stopListening, stop))
            {
                await stop.CancelAsync().ConfigureAwait(false);
                stop.Dispose();
                _stopListening = null;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task ListenAsync(ITransport transport, CancellationToken stop)
    {
        try
        {
            await foreach (Delivery delivery in transport.ConsumeAsync(new ConsumeOptions { Queues = [ReplyQueue], Prefetch = 64 }, stop).ConfigureAwait(false))
            {
                await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
                if (delivery.Message is { } message)
                {
                    Deliver(message);
                }
            }
        }
        catch (Exception) when (stop.IsCancellationRequested)
        {
            // No one waits any more, so nothing is lost: this is the loop winding down, possibly after its app was
            // disposed (the CLI disposes it as soon as the replies are in, and a consumer's clean-up then fails).
        }
        catch (ObjectDisposedException)
        {
            // The app was disposed while the listener lingered.
        }
        catch (Exception ex)
        {
            // The waiters time out with what came; the next call listens again.
            Diagnostics.Log.ControlRepliesLost(_logger, ReplyQueue, ex);
        }
    }

    /// <summary>Hands a reply <c>{"&lt;node&gt;": value}</c> to the call that waits for its ticket; others are dropped (stale).</summary>
    private void Deliver(TransportMessage message)
    {
        if (message.Headers.TryGetValue("clock", out object? clock) && clock is long c)
        {
            _app.Clock.Adjust(c);
        }

        if (!message.Headers.TryGetValue("ticket", out object? t) || t is not string ticket || !_waiting.TryGetValue(ticket, out ChannelWriter<ControlReply>? inbox))
        {
            return;
        }

        // As Celery's reply consumer, which accepts its accept_content: signed replies only when signing is on.
        if (!_app.TryOpenControl(message, out TransportMessage? opened, out string? refusal))
        {
            Diagnostics.Log.ControlMessageRefused(_logger, "reply", refusal!);
            return;
        }

        message = opened!;

        try
        {
            using JsonDocument doc = JsonDocument.Parse(message.Body, new JsonDocumentOptions { MaxDepth = JsonValues.MaxDepth });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return;
            }

            foreach (JsonProperty node in doc.RootElement.EnumerateObject())
            {
                inbox.TryWrite(new ControlReply(node.Name, node.Value.Clone()));
            }
        }
        catch (JsonException)
        {
            // Not a reply: ignored, as kombu does with what it cannot decode.
        }
    }
}

/// <summary>Where a command goes and how its replies are gathered.</summary>
public sealed record ControlOptions
{
    /// <summary>The node names it is for (<c>-d</c>), or all workers when <see langword="null"/>.</summary>
    public IReadOnlyList<string>? Destination { get; init; }

    /// <summary>Whether to wait for replies (inspect always does). <value>false</value> for control commands, as Celery's.</summary>
    public bool Reply { get; init; }

    /// <summary>How long replies are gathered (<c>-t</c>). <value>1 s</value></summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Stop once this many replies came (default: as many as <see cref="Destination"/> names, else wait the timeout).</summary>
    public int? Limit { get; init; }

    /// <summary>
    /// Keep the reply listener a few seconds after the call, for the calls that follow (a monitor, a script).
    /// Off, it stops at once and its queue goes, as kombu's does after a one-off call (a worker's mingle). <value>true</value>
    /// </summary>
    public bool KeepListening { get; init; } = true;
}

/// <summary>One worker's reply: its node name and the value it sent (<c>{"ok": ...}</c>, <c>{"error": ...}</c>, a list...).</summary>
/// <param name="Node">The worker's node name.</param>
/// <param name="Value">What it replied.</param>
public sealed record ControlReply(string Node, JsonElement Value)
{
    /// <summary>The text of an <c>{"ok": ...}</c> reply, else <see langword="null"/>.</summary>
    public string? Ok => Field("ok");

    /// <summary>The text of an <c>{"error": ...}</c> reply, else <see langword="null"/>.</summary>
    public string? Error => Field("error");

    private string? Field(string name) =>
        Value.ValueKind == JsonValueKind.Object && Value.TryGetProperty(name, out JsonElement v)
            ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText()
            : null;
}
