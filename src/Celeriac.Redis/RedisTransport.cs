using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using Celeriac.Concurrency;
using Celeriac.Protocol;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Celeriac.Redis;

/// <summary>
/// kombu's Redis transport, key for key: a queue is a list per priority step (<c>celery</c>,
/// <c>celery\x06\x163</c>, <c>\x06\x166</c>, <c>\x06\x169</c>; a lower number is served first), bindings live
/// in <c>_kombu.binding.&lt;exchange&gt;</c> sets, taken messages are noted in the <c>unacked</c> hash and the
/// <c>unacked_index</c> sorted set until they are settled, and fanout exchanges are PUBLISH channels
/// (<c>/&lt;db&gt;.celeryev/&lt;routing key&gt;</c>). Python Celery workers and clients share these keys.
/// <para>
/// Unlike kombu, taking a message and noting it as unacked is one atomic script, so a worker killed at any
/// moment loses nothing; and a live consumer keeps the <c>unacked_index</c> entries of what it holds fresh,
/// so only a dead consumer's messages are restored after the visibility timeout, however long a task runs.
/// </para>
/// </summary>
public sealed class RedisTransport : ITransport, ICatchUpTransport
{
    /// <summary>kombu's separator in priority list names and binding members.</summary>
    public const string Separator = "\x06\x16";

    private const string BindingPrefix = "_kombu.binding.";
    private const int MaxBatch = 256;
    private static readonly int[] s_steps = [0, 3, 6, 9];
    private static readonly TimeSpan s_publishPatience = TimeSpan.FromSeconds(60);

    // Outlives every retry of a publish (s_publishPatience), so that a late retry still finds its batch in the ledger.
    private static readonly TimeSpan s_publishLedgerWindow = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan s_settlePatience = TimeSpan.FromMinutes(10);

    private readonly RedisConnection _connection;
    private readonly int _db;
    private readonly string _prefix;
    private readonly RedisKey _unacked;
    private readonly RedisKey _unackedIndex;
    private readonly RedisKey _unackedMutex;
    private readonly RedisKey _publishLedger;
    private readonly ConcurrentQueue<string> _confirmedBatches = new();
    private readonly string _fanoutPrefix;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _visibility;
    private readonly string _tagPrefix = "celeriac-" + Guid.NewGuid().ToString("N") + "-";
    private readonly ConcurrentDictionary<string, RedisDelivery> _held = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Consumer, byte> _consumers = new();
    private readonly ConcurrentDictionary<string, byte> _declared = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _fanout = new(StringComparer.Ordinal) { ["celeryev"] = 0, ["celery.pidbox"] = 0 };
    private readonly CancellationTokenSource _lifetime = new();
    private readonly Batcher<string> _acks;
    private readonly Lock _gate = new();
    private Task? _maintenance;
    private long _takes;
    private int _disposed;

    /// <summary>Connects (lazily, reconnecting by itself) to the server named by <see cref="TransportOptions.Url"/>.</summary>
    public RedisTransport(TransportOptions options)
        : this(options, ownConnection: false)
    {
    }

    /// <summary>A transport with a connection of its own, not shared in the process (tests play a second process with it).</summary>
    internal RedisTransport(TransportOptions options, bool ownConnection)
    {
        ArgumentNullException.ThrowIfNull(options);
        RedisEndpoint endpoint = RedisEndpoint.Parse(options.Url, options.ConnectTimeout);
        _connection = RedisConnection.Acquire(endpoint, options.LoggerFactory, ownConnection);
        _db = endpoint.Database;
        _prefix = endpoint.KeyPrefix;
        _unacked = _prefix + "unacked";
        _unackedIndex = _prefix + "unacked_index";
        _unackedMutex = _prefix + "unacked_mutex";
        _publishLedger = _prefix + "celeriac.publishing";
        _fanoutPrefix = _prefix + "/" + _db.ToString(CultureInfo.InvariantCulture) + ".";
        _time = options.TimeProvider;
        _logger = options.LoggerFactory.CreateLogger("Celeriac.Redis");
        _visibility = options.VisibilityTimeout > TimeSpan.Zero ? options.VisibilityTimeout : TimeSpan.FromHours(1);
        _acks = new Batcher<string>(SendAcksAsync);
    }

    private double NowSeconds => _time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;

    private async Task<IDatabase> DatabaseAsync() => await _connection.DatabaseAsync(_db).ConfigureAwait(false);

    /// <summary>The name of the list that holds <paramref name="queue"/>'s messages of <paramref name="priority"/> (kombu's <c>_q_for_pri</c>).</summary>
    public static string ListName(string queue, int priority)
    {
        ArgumentNullException.ThrowIfNull(queue);
        int step = PriorityStep(priority);
        return step == 0 ? queue : queue + Separator + step.ToString(CultureInfo.InvariantCulture);
    }

    private static int PriorityStep(int priority)
    {
        int p = Math.Clamp(priority, 0, 9);
        int step = s_steps[0];
        foreach (int s in s_steps)
        {
            if (s <= p)
            {
                step = s;
            }
        }

        return step;
    }

    /// <inheritdoc />
    public async ValueTask DeclareQueueAsync(QueueDeclaration queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        if (queue.ExchangeType == "fanout")
        {
            _fanout.TryAdd(queue.Exchange, 0);
            return;
        }

        // Celery binds a queue to an exchange of its own name when none is given; kombu writes the member
        // 'routing_key \x06\x16 pattern \x06\x16 queue' (the pattern is always empty in Celery's use).
        string exchange = queue.Exchange.Length == 0 ? queue.Name : queue.Exchange;
        string member = (queue.RoutingKey ?? queue.Name) + Separator + Separator + queue.Name;
        string declared = exchange + Separator + member;
        if (_declared.ContainsKey(declared))
        {
            return;
        }

        await _connection.RunAsync(
            async () => await (await DatabaseAsync().ConfigureAwait(false)).SetAddAsync(_prefix + BindingPrefix + exchange, member).ConfigureAwait(false),
            s_publishPatience,
            ct).ConfigureAwait(false);
        _declared.TryAdd(declared, 0);
    }

    /// <inheritdoc />
    public async ValueTask PublishAsync(string exchange, string routingKey, IReadOnlyList<TransportMessage> messages, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        ArgumentNullException.ThrowIfNull(routingKey);
        ArgumentNullException.ThrowIfNull(messages);
        ct.ThrowIfCancellationRequested();
        if (messages.Count == 0)
        {
            return;
        }

        var payloads = new RedisValue[messages.Count];
        for (int i = 0; i < payloads.Length; i++)
        {
            payloads[i] = KombuEnvelope.Encode(messages[i], exchange, routingKey);
        }

        if (_fanout.ContainsKey(exchange))
        {
            RedisChannel channel = RedisChannel.Literal(_fanoutPrefix + exchange + (routingKey.Length > 0 ? "/" + routingKey : ""));
            await _connection.RunAsync(
                async () =>
                {
                    ISubscriber subscriber = (await _connection.MultiplexerAsync().ConfigureAwait(false)).GetSubscriber();
                    await Task.WhenAll(payloads.Select(p => subscriber.PublishAsync(channel, p))).ConfigureAwait(false);
                    return true;
                },
                s_publishPatience,
                ct).ConfigureAwait(false);
            return;
        }

        // One id per batch, the same on every try: see RedisScripts.PublishOnce.
        string batch = Guid.NewGuid().ToString("N");
        var confirmed = new List<RedisValue>();
        while (confirmed.Count < 256 && _confirmedBatches.TryDequeue(out string? done))
        {
            confirmed.Add(done);
        }

        await _connection.RunAsync(
            async () =>
            {
                IDatabase db = await DatabaseAsync().ConfigureAwait(false);
                IReadOnlyList<string> queues = exchange.Length == 0 ? [routingKey] : await LookupAsync(db, exchange, routingKey).ConfigureAwait(false);
                if (queues.Count == 0)
                {
                    Log.Unroutable(_logger, exchange, routingKey);
                    return true;
                }

                var keys = new List<RedisKey>(queues.Count + 1) { _publishLedger };
                var args = new List<RedisValue>(payloads.Length * queues.Count + queues.Count + confirmed.Count + 4) { batch, NowSeconds, s_publishLedgerWindow.TotalSeconds, confirmed.Count };
                args.AddRange(confirmed);

                // One LPUSH per list with the batch in order: the list then pops the batch oldest first.
                foreach (string queue in queues)
                {
                    foreach (IGrouping<int, int> byStep in Enumerable.Range(0, messages.Count).GroupBy(i => PriorityStep(messages[i].Priority ?? 0)))
                    {
                        keys.Add(_prefix + ListName(queue, byStep.Key));
                        int at = args.Count;
                        args.Add(0);
                        args.AddRange(byStep.Select(i => payloads[i]));
                        args[at] = args.Count - at - 1;
                    }
                }

                await db.ScriptEvaluateAsync(RedisScripts.PublishOnce, [.. keys], [.. args]).ConfigureAwait(false);
                return true;
            },
            s_publishPatience,
            ct).ConfigureAwait(false);
        _confirmedBatches.Enqueue(batch);
    }

    /// <summary>kombu's <c>_lookup</c>: the queues bound to <paramref name="exchange"/> whose binding key matches.</summary>
    private async Task<IReadOnlyList<string>> LookupAsync(IDatabase db, string exchange, string routingKey)
    {
        RedisValue[] members = await db.SetMembersAsync(_prefix + BindingPrefix + exchange).ConfigureAwait(false);
        var queues = new List<string>();
        foreach (RedisValue member in members)
        {
            string[] parts = member.ToString().Split(Separator);
            if (parts.Length == 3 && TopicKeys.Matches(parts[0], routingKey) && !queues.Contains(parts[2]))
            {
                queues.Add(parts[2]);
            }
        }

        return queues;
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<Delivery> ConsumeAsync(ConsumeOptions options, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        string[] queues = options.Queues.Distinct(StringComparer.Ordinal).ToArray();
        if (queues.Length == 0)
        {
            yield break;
        }

        StartMaintenance();
        var window = new PrefetchWindow(options);
        var consumer = new Consumer(this, queues, window);
        _consumers.TryAdd(consumer, 0);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                // What the last take brought has been handed over.
                consumer.CatchUp.HandedOver();
                try
                {
                    await window.WaitForRoomAsync(ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    break;
                }

                IReadOnlyList<RedisDelivery> taken = await consumer.TakeAsync(Math.Min(Math.Max(1, window.Free), MaxBatch), window, ct).ConfigureAwait(false);
                foreach (RedisDelivery delivery in taken)
                {
                    yield return delivery;
                }
            }
        }
        finally
        {
            _consumers.TryRemove(consumer, out _);
            await consumer.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Each consumer's next take runs its script after this call (a pending blocking pop is ended at once for it), so
    /// it finds every message pushed before: a publisher's task and then its broadcast, which Redis serves to the worker
    /// on two connections, are read in the order they were sent.
    /// </remarks>
    public async ValueTask CatchUpAsync(CancellationToken ct = default)
    {
        await Task.WhenAll(_consumers.Keys.Select(c => c.CatchUpAsync(ct))).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IAsyncDisposable> SubscribeAsync(string exchange, Func<TransportMessage, ValueTask> handler, SubscriberBinding? queue = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        ArgumentNullException.ThrowIfNull(handler);
        _fanout.TryAdd(exchange, 0);
        string name = _fanoutPrefix + exchange;
        ISubscriber subscriber = (await _connection.MultiplexerAsync().ConfigureAwait(false)).GetSubscriber();

        // kombu publishes '/<db>.<exchange>/<routing key>' (or without the key); a subscriber hears both. As kombu's
        // fanout_patterns, a topic binding key narrows the keyed pattern ('worker.#' → '/<db>.celeryev/worker.*'), so that
        // a worker's gossip queue does not receive every task event of the cluster.
        string keys = queue is { BindingKey: { Length: > 0 } binding } && binding != "#" ? TopicToGlob(binding) : "*";
        ChannelMessageQueue plain = await _connection.RunAsync(() => subscriber.SubscribeAsync(RedisChannel.Literal(name)), s_publishPatience, ct).ConfigureAwait(false);
        ChannelMessageQueue keyed = await _connection.RunAsync(() => subscriber.SubscribeAsync(RedisChannel.Pattern(EscapeGlob(name) + "/" + keys)), s_publishPatience, ct).ConfigureAwait(false);
        plain.OnMessage(m => DeliverFanoutAsync(exchange, m, handler));
        keyed.OnMessage(m => DeliverFanoutAsync(exchange, m, handler));
        return new Subscription(plain, keyed);
    }

    private async Task DeliverFanoutAsync(string exchange, ChannelMessage m, Func<TransportMessage, ValueTask> handler)
    {
        byte[]? raw = m.Message;
        if (raw is null)
        {
            Log.BadFanoutMessage(_logger, m.Channel.ToString(), "empty message");
            return;
        }

        if (!KombuEnvelope.TryDecode(raw, out TransportMessage? message, out string? error))
        {
            Log.BadFanoutMessage(_logger, m.Channel.ToString(), error ?? "unreadable");
            return;
        }

        try
        {
            await handler(message!).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.SubscriberFailed(_logger, exchange, e);
        }
    }

    /// <summary>kombu's <c>routing_key.replace('#', '*')</c>, other glob characters escaped.</summary>
    private static string TopicToGlob(string bindingKey) => EscapeGlob(bindingKey.Replace("*", "\u0001", StringComparison.Ordinal))
        .Replace("#", "*", StringComparison.Ordinal)
        .Replace("\u0001", "*", StringComparison.Ordinal);

    private static string EscapeGlob(string text)
    {
        var sb = new StringBuilder(text.Length + 4);
        foreach (char c in text)
        {
            if (c is '*' or '?' or '[' or ']' or '\\')
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        return sb.ToString();
    }

    /// <inheritdoc />
    public async ValueTask<long> GetQueueLengthAsync(string queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        return await _connection.RunAsync(
            async () =>
            {
                IDatabase db = await DatabaseAsync().ConfigureAwait(false);
                long[] lengths = await Task.WhenAll(s_steps.Select(s => db.ListLengthAsync(_prefix + ListName(queue, s)))).ConfigureAwait(false);
                return lengths.Sum();
            },
            s_publishPatience,
            ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<long> PurgeAsync(string queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        RedisKey[] keys = s_steps.Select(s => (RedisKey)(_prefix + ListName(queue, s))).ToArray();
        return await _connection.RunAsync(
            async () => (long)await (await DatabaseAsync().ConfigureAwait(false)).ScriptEvaluateAsync(RedisScripts.Purge, keys).ConfigureAwait(false),
            s_publishPatience,
            ct).ConfigureAwait(false);
    }

    private Task<bool> SendAcksAsync(string[] tags)
    {
        RedisValue[] values = Array.ConvertAll(tags, t => (RedisValue)t);
        return _connection.RunAsync(
            async () =>
            {
                // kombu's QoS.ack: ZREM unacked_index; HDEL unacked (many tags per command here).
                IDatabase db = await DatabaseAsync().ConfigureAwait(false);
                Task<long> index = db.SortedSetRemoveAsync(_unackedIndex, values);
                Task<long> hash = db.HashDeleteAsync(_unacked, values);
                await Task.WhenAll(index, hash).ConfigureAwait(false);
                return true;
            },
            s_settlePatience,
            _lifetime.IsCancellationRequested ? CancellationToken.None : _lifetime.Token);
    }

    private async Task RequeueAsync(string tag)
    {
        await _connection.RunAsync(
            // At the head, as AMQP requeues (kombu pushes a rejected message to the tail instead).
            async () => await RestoreTagAsync(await DatabaseAsync().ConfigureAwait(false), tag).ConfigureAwait(false),
            s_settlePatience,
            CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// kombu's <c>restore_by_tag</c>: moves the message noted under <paramref name="tag"/> back to its queues
    /// (marked redelivered), in one transaction that does nothing if the note changed meanwhile.
    /// Returns whether a message was moved.
    /// </summary>
    private async Task<bool> RestoreTagAsync(IDatabase db, string tag)
    {
        RedisValue noted = await db.HashGetAsync(_unacked, tag).ConfigureAwait(false);
        ITransaction tran = db.CreateTransaction();
        if (noted.IsNull)
        {
            tran.AddCondition(Condition.HashNotExists(_unacked, tag));
            _ = tran.SortedSetRemoveAsync(_unackedIndex, tag);
            await tran.ExecuteAsync().ConfigureAwait(false);
            return false;
        }

        tran.AddCondition(Condition.HashEqual(_unacked, tag, noted));
        _ = tran.SortedSetRemoveAsync(_unackedIndex, tag);
        _ = tran.HashDeleteAsync(_unacked, tag);
        bool moved = false;
        try
        {
            // [payload, exchange, routing_key]
            if (JsonNode.Parse((byte[])noted!) is JsonArray { Count: 3 } note && note[0] is JsonObject payload)
            {
                string exchange = note[1]?.GetValue<string>() ?? "";
                string routingKey = note[2]?.GetValue<string>() ?? "";
                if (payload["headers"] is JsonObject headers)
                {
                    headers["redelivered"] = true;
                }

                if (payload["properties"] is JsonObject { } properties && properties["delivery_info"] is JsonObject info)
                {
                    info["redelivered"] = true;
                }

                RedisValue restored = payload.ToJsonString();
                IReadOnlyList<string> queues = exchange.Length == 0 ? [routingKey] : await LookupAsync(db, exchange, routingKey).ConfigureAwait(false);
                foreach (string queue in queues)
                {
                    // RPUSH: the head of the queue, served next (kombu's restore_by_tag).
                    _ = tran.ListRightPushAsync(_prefix + queue, restored);
                    moved = true;
                }
            }
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            // kombu drops a note it cannot read too; keeping it would retry it forever.
            Log.RestoreFailed(_logger, tag, e);
        }

        return await tran.ExecuteAsync().ConfigureAwait(false) && moved;
    }

    private void StartMaintenance()
    {
        lock (_gate)
        {
            _maintenance ??= MaintainAsync(_lifetime.Token);
        }
    }

    /// <summary>
    /// Keeps the <c>unacked_index</c> entries of held messages fresh, and restores the messages of dead
    /// consumers (entries older than the visibility timeout), as kombu's <c>restore_visible</c> does.
    /// </summary>
    private async Task MaintainAsync(CancellationToken ct)
    {
        TimeSpan tick = TimeSpan.FromTicks(Math.Clamp(_visibility.Ticks / 4, TimeSpan.FromMilliseconds(100).Ticks, TimeSpan.FromSeconds(10).Ticks));
        while (!ct.IsCancellationRequested)
        {
            try
            {
                IDatabase db = await DatabaseAsync().ConfigureAwait(false);
                await RenewAsync(db).ConfigureAwait(false);
                await RestoreDeadAsync(db).ConfigureAwait(false);
                _connection.MarkUp();
            }
            catch (Exception e) when (RedisConnection.IsOutage(e))
            {
                _connection.MarkDown(e);
            }

            try
            {
                await Task.Delay(tick, _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task RenewAsync(IDatabase db)
    {
        if (_held.IsEmpty)
        {
            return;
        }

        double now = NowSeconds;
        foreach (string[] chunk in _held.Keys.Chunk(1000))
        {
            // XX: never bring back an entry that another consumer has restored meanwhile.
            SortedSetEntry[] entries = Array.ConvertAll(chunk, t => new SortedSetEntry(t, now));
            await db.SortedSetAddAsync(_unackedIndex, entries, SortedSetWhen.Exists).ConfigureAwait(false);
        }
    }

    private async Task RestoreDeadAsync(IDatabase db)
    {
        string token = Guid.NewGuid().ToString("N");
        if (!await db.StringSetAsync(_unackedMutex, token, TimeSpan.FromSeconds(30), When.NotExists).ConfigureAwait(false))
        {
            return; // Another consumer is restoring.
        }

        int restored = 0;
        try
        {
            double ceiling = NowSeconds - _visibility.TotalSeconds;
            RedisValue[] expired = await db.SortedSetRangeByScoreAsync(_unackedIndex, 0, ceiling, take: 1000).ConfigureAwait(false);
            foreach (RedisValue tag in expired)
            {
                string t = tag.ToString();
                if (!_held.ContainsKey(t) && await RestoreTagAsync(db, t).ConfigureAwait(false))
                {
                    restored++;
                }
            }
        }
        finally
        {
            await db.ScriptEvaluateAsync(RedisScripts.ReleaseMutex, [_unackedMutex], [token]).ConfigureAwait(false);
        }

        if (restored > 0)
        {
            Log.Restored(_logger, restored, _visibility);
        }
    }

    /// <summary>
    /// Stops as a killed process does: no more renewals, nothing returned, nothing acked; what it held stays
    /// noted in <c>unacked</c> for a live consumer to restore after the visibility timeout. For tests.
    /// </summary>
    internal async ValueTask KillAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _lifetime.CancelAsync().ConfigureAwait(false);
        foreach (RedisDelivery delivery in _held.Values)
        {
            delivery.TryClaimForShutdown();
        }

        _held.Clear();
        if (_maintenance is not null)
        {
            await _maintenance.ConfigureAwait(false);
        }

        await _connection.ReleaseAsync().ConfigureAwait(false);
    }

    /// <summary>Returns every held, unsettled message to its queue (as kombu does at shutdown) and closes.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _lifetime.CancelAsync().ConfigureAwait(false);
        if (_maintenance is not null)
        {
            await _maintenance.ConfigureAwait(false);
        }

        foreach (RedisDelivery delivery in _held.Values)
        {
            if (delivery.TryClaimForShutdown())
            {
                _held.TryRemove(delivery.Tag, out _);
                try
                {
                    using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await _connection.RunAsync(
                        async () => await RestoreTagAsync(await DatabaseAsync().ConfigureAwait(false), delivery.Tag).ConfigureAwait(false),
                        TimeSpan.FromSeconds(10),
                        patience.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (RedisConnection.IsOutage(e) || e is OperationCanceledException)
                {
                    // Redis is away: the note stays in unacked, and a live consumer restores it after the visibility timeout.
                    _connection.MarkDown(e is OperationCanceledException ? new TimeoutException("restore at shutdown timed out") : e);
                }
            }
        }

        try
        {
            await _acks.DrainAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (RedisConnection.IsOutage(e))
        {
            // Unsent acks leave notes that are restored later: the messages run again rather than vanish.
        }

        _lifetime.Dispose();
        await _connection.ReleaseAsync().ConfigureAwait(false);
    }

    /// <summary>One consumer's take loop state: its queues' list keys in rotation, and its blocking connection.</summary>
    private sealed class Consumer(RedisTransport owner, string[] queues, PrefetchWindow window) : IAsyncDisposable
    {
        private readonly RedisKey _lastTake = owner._prefix + "celeriac.lasttake." + Guid.NewGuid().ToString("N");
        private RedisKey[][]? _takeKeys;
        private readonly RedisKey[][] _popKeys = BuildKeys(owner, queues, []);
        private readonly RedisValue[][] _queueArgs = BuildQueueArgs(queues);
        private string? _unansweredCall;
        private ConnectionMultiplexer? _blocking;
        private long? _blockingClientId;
        private static readonly TimeSpan s_unblockAgainAfter = TimeSpan.FromMilliseconds(50);
        private Task<RedisResult>? _pendingPop;
        private RedisKey[]? _pendingKeys;
        private int _rotation;
        private TimeSpan _backoff = TimeSpan.FromMilliseconds(50);

        /// <summary>This consumer's part of <see cref="CatchUpAsync"/>.</summary>
        public ConsumeCatchUp CatchUp { get; } = new(window);

        /// <summary>Completes once a take begun after this call has handed over what it found, or the window is full.</summary>
        public async Task CatchUpAsync(CancellationToken ct)
        {
            // A blocking pop (up to 1 s, as long as Celery's inspect waits for replies) is cut short, so that a take
            // begins again. The pop may be sent just after this looks, or its UNBLOCK reach Redis before it: so look
            // again every 50 ms until a take meets the catch-up (bounded: 2 s of that, then wait as before).
            Task met = CatchUp.WaitAsync(ct);
            for (int i = 0; !met.IsCompleted && !ct.IsCancellationRequested && i < 40; i++)
            {
                if (Volatile.Read(ref _pendingPop) is not null)
                {
                    await UnblockAsync().ConfigureAwait(false);
                }

                await Task.WhenAny(met, Task.Delay(s_unblockAgainAfter, ct)).ConfigureAwait(false);
            }

            await met.ConfigureAwait(false);
        }

        /// <summary>
        /// Takes up to <paramref name="want"/> messages: at once if any are ready (one atomic script), else
        /// waits for the first with a blocking pop (kombu's BRPOP, 1 s at a time), never polling.
        /// Redis being away is waited out with back-off; it never ends the loop.
        /// </summary>
        public async Task<IReadOnlyList<RedisDelivery>> TakeAsync(int want, PrefetchWindow window, CancellationToken ct)
        {
            // Queues are served in turn, so a busy queue does not starve the others (kombu's queue cycle).
            int r = _rotation++ % queues.Length;
            try
            {
                IDatabase db = await owner.DatabaseAsync().ConfigureAwait(false);
                if (_unansweredCall is not null)
                {
                    await GiveBackUnansweredAsync(db).ConfigureAwait(false);
                }

                long take = CatchUp.BeginTake();
                string call = owner._tagPrefix + Interlocked.Increment(ref owner._takes).ToString(CultureInfo.InvariantCulture) + "-";
                RedisValue[] args = [want, owner.NowSeconds.ToString("R", CultureInfo.InvariantCulture), call, .. _queueArgs[r]];

                // Until the reply is in, the call may have taken messages that only its reply names.
                _unansweredCall = call;
                var result = (RedisResult[])(await db.ScriptEvaluateAsync(RedisScripts.Take, (_takeKeys ??= BuildKeys(owner, queues, [owner._unackedIndex, owner._unacked, _lastTake]))[r], args).ConfigureAwait(false))!;
                _unansweredCall = null;
                owner._connection.MarkUp();
                _backoff = TimeSpan.FromMilliseconds(50);
                if (result.Length > 0)
                {
                    var taken = new List<RedisDelivery>(result.Length / 3);
                    for (int i = 0; i + 2 < result.Length; i += 3)
                    {
                        string queue = queues[(((int)result[i] - 1) % queues.Length + r) % queues.Length];
                        taken.Add(owner.Hold(queue, (byte[])result[i + 1]!, (string)result[i + 2]!, window));
                    }

                    return taken;
                }

                // The queues were empty when this take looked.
                CatchUp.Met(take);
                return await BlockingTakeAsync(db, r, window, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (RedisConnection.IsOutage(e) && !ct.IsCancellationRequested)
            {
                owner._connection.MarkDown(e);
                try
                {
                    await Task.Delay(_backoff, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return [];
                }

                _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
                return [];
            }
        }

        /// <summary>
        /// A take whose reply was lost (Redis went away mid-call) may have noted messages as unacked that this
        /// consumer never saw: its last-take record names them, and they go back to the head of their queues.
        /// </summary>
        private async Task GiveBackUnansweredAsync(IDatabase db)
        {
            string? record = await db.StringGetAsync(_lastTake).ConfigureAwait(false);
            if (record is not null && record.StartsWith(_unansweredCall + "\n", StringComparison.Ordinal))
            {
                foreach (string tag in record.Split('\n').Skip(1))
                {
                    await owner.RestoreTagAsync(db, tag).ConfigureAwait(false);
                }
            }

            _unansweredCall = null;
        }

        private async Task<IReadOnlyList<RedisDelivery>> BlockingTakeAsync(IDatabase db, int r, PrefetchWindow window, CancellationToken ct)
        {
            if (_pendingPop is null)
            {
                if (CatchUp.Pending)
                {
                    // A catch-up came after this take looked: take again at once rather than block.
                    return [];
                }

                if (_blocking is null)
                {
                    _blocking = await owner._connection.OpenDedicatedAsync().ConfigureAwait(false);
                    _blockingClientId = await ClientIdAsync(_blocking.GetDatabase(owner._db)).ConfigureAwait(false);
                }

                _pendingKeys = _popKeys[r];
                Volatile.Write(ref _pendingPop, _blocking.GetDatabase(owner._db).ExecuteAsync("BRPOP", [.. _pendingKeys.Select(k => (object)k), 1]));
            }

            RedisResult popped;
            try
            {
                popped = await _pendingPop.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return []; // The pop stays pending; DisposeAsync gives back what it brings.
            }
            catch (Exception e) when (RedisConnection.IsOutage(e) && _blocking is { } lost)
            {
                // This connection reconnects on its own back-off (up to 5 s), which lagged the shared one's after an
                // outage: its fast failures then said a second time that Redis was unreachable, though it was back.
                // The next blocking pop opens a fresh one, once a take on the shared connection has worked again.
                _blocking = null;
                _blockingClientId = null;
                await CloseBlockingAsync(lost).ConfigureAwait(false);
                throw;
            }
            finally
            {
                if (_pendingPop.IsCompleted)
                {
                    _pendingPop = null;
                }
            }

            if (popped.IsNull || popped.Length != 2)
            {
                return [];
            }

            // [list, payload]: note it as unacked straight away (the script reads the tag from the payload).
            string list = (string)popped[0]!;
            byte[] raw = (byte[])popped[1]!;
            string queue = QueueOfList(list);
            string fallback = owner._tagPrefix + "b" + Interlocked.Increment(ref owner._takes).ToString(CultureInfo.InvariantCulture);
            // The message is out of its list and only here now: note it through any outage (the script is idempotent).
            string tag = await owner._connection.RunAsync(
                async () => (string)(await db.ScriptEvaluateAsync(
                    RedisScripts.Hold,
                    [owner._unackedIndex, owner._unacked],
                    [owner.NowSeconds.ToString("R", CultureInfo.InvariantCulture), raw, queue, fallback]).ConfigureAwait(false))!,
                s_settlePatience,
                CancellationToken.None).ConfigureAwait(false);
            return [owner.Hold(queue, raw, tag, window)];
        }

        /// <summary>The blocking connection's id, for <c>CLIENT UNBLOCK</c>; null where Redis does not say (before 5.0).</summary>
        private static async Task<long?> ClientIdAsync(IDatabase blocking)
        {
            try
            {
                return (long)await blocking.ExecuteAsync("CLIENT", "ID").ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisServerException or RedisCommandException)
            {
                return null;
            }
        }

        /// <summary>
        /// Ends the pending blocking pop now (<c>CLIENT UNBLOCK</c>, from the shared connection). Best effort: when it
        /// cannot (an old Redis, an ACL without CLIENT, the blocking connection reconnected under another id), the pop
        /// ends by its own timeout of a second.
        /// </summary>
        private async Task UnblockAsync()
        {
            if (_blockingClientId is not { } id)
            {
                return;
            }

            try
            {
                IDatabase db = await owner.DatabaseAsync().ConfigureAwait(false);
                await db.ExecuteAsync("CLIENT", "UNBLOCK", id).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisServerException or RedisCommandException or TimeoutException || RedisConnection.IsOutage(e))
            {
            }
        }

        private string QueueOfList(string list)
        {
            string name = list[owner._prefix.Length..];
            int sep = name.LastIndexOf(Separator, StringComparison.Ordinal);
            return sep >= 0 && queues.Contains(name[..sep]) ? name[..sep] : name;
        }

        public async ValueTask DisposeAsync()
        {
            CatchUp.Ended();
            if (_pendingPop is { } pending && _pendingKeys is not null)
            {
                // A pop already sent may still bring a message: put it back where it was, at the head. Unblocked at
                // once (it returns nothing, or what it had taken already), a stop does not wait out its second.
                try
                {
                    await UnblockAsync().ConfigureAwait(false);
                    RedisResult popped = await pending.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                    if (!popped.IsNull && popped.Length == 2)
                    {
                        IDatabase db = await owner.DatabaseAsync().ConfigureAwait(false);
                        await db.ListRightPushAsync((string)popped[0]!, (byte[])popped[1]!).ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (RedisConnection.IsOutage(e))
                {
                    owner._connection.MarkDown(e);
                }
            }

            try
            {
                await (await owner.DatabaseAsync().ConfigureAwait(false)).KeyDeleteAsync(_lastTake, CommandFlags.FireAndForget).ConfigureAwait(false);
            }
            catch (Exception e) when (RedisConnection.IsOutage(e))
            {
                // It expires by itself.
            }

            if (_blocking is not null)
            {
                await CloseBlockingAsync(_blocking).ConfigureAwait(false);
            }
        }

        private static async Task CloseBlockingAsync(ConnectionMultiplexer blocking)
        {
            await blocking.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
            await blocking.DisposeAsync().ConfigureAwait(false);
        }

        private static RedisKey[][] BuildKeys(RedisTransport owner, string[] queues, RedisKey[] first)
        {
            var rotations = new RedisKey[queues.Length][];
            for (int r = 0; r < queues.Length; r++)
            {
                var keys = new List<RedisKey>(first);

                // kombu's order: each priority step across all queues before the next step.
                foreach (int step in s_steps)
                {
                    for (int q = 0; q < queues.Length; q++)
                    {
                        keys.Add(owner._prefix + ListName(queues[(q + r) % queues.Length], step));
                    }
                }

                rotations[r] = [.. keys];
            }

            return rotations;
        }

        private static RedisValue[][] BuildQueueArgs(string[] queues)
        {
            var rotations = new RedisValue[queues.Length][];
            for (int r = 0; r < queues.Length; r++)
            {
                var args = new List<RedisValue>();
                foreach (int step in s_steps)
                {
                    for (int q = 0; q < queues.Length; q++)
                    {
                        args.Add(queues[(q + r) % queues.Length]);
                    }
                }

                rotations[r] = [.. args];
            }

            return rotations;
        }
    }

    private RedisDelivery Hold(string queue, byte[] raw, string tag, PrefetchWindow window)
    {
        string? error = null;
        bool redelivered = false;
        if (KombuEnvelope.TryDecode(raw, out TransportMessage? message, out error))
        {
            redelivered = message!.Headers.TryGetValue("redelivered", out object? flag) && flag is true;
            if (message.DeliveryTag != tag)
            {
                message = message with { DeliveryTag = tag };
            }
        }

        window.Take(1);
        var delivery = new RedisDelivery(this, queue, message, error, redelivered, tag, window);
        _held[tag] = delivery;
        return delivery;
    }

    private sealed class RedisDelivery(RedisTransport owner, string queue, TransportMessage? message, string? error, bool redelivered, string tag, PrefetchWindow window)
        : Delivery(queue, message, error, redelivered, window)
    {
        private int _claimed;

        public string Tag { get; } = tag;

        /// <summary>Claims the delivery for the shutdown restore; false when a settle claimed it first.</summary>
        public bool TryClaimForShutdown() => Interlocked.Exchange(ref _claimed, 1) == 0;

        protected override ValueTask SettleAsync(bool? requeue, CancellationToken ct)
        {
            if (Interlocked.Exchange(ref _claimed, 1) != 0)
            {
                return ValueTask.CompletedTask; // Returned to its queue at shutdown already.
            }

            owner._held.TryRemove(Tag, out _);
            return requeue == true ? new ValueTask(owner.RequeueAsync(Tag)) : new ValueTask(owner._acks.Enqueue(Tag));
        }
    }

    private sealed class Subscription(ChannelMessageQueue plain, ChannelMessageQueue keyed) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await plain.UnsubscribeAsync().ConfigureAwait(false);
            await keyed.UnsubscribeAsync().ConfigureAwait(false);
        }
    }
}
