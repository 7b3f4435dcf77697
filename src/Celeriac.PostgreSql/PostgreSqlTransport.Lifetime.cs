using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Celeriac.Protocol;
using Celeriac.Transport;
using Npgsql;
using NpgsqlTypes;

namespace Celeriac.PostgreSql;

public sealed partial class PostgreSqlTransport
{
    private readonly ConcurrentQueue<long> _acks = new();
    private readonly Lock _ackGate = new();
    private Task _ackFlush = Task.CompletedTask;
    private bool _ackRunning;

    private void StartRenewer()
    {
        lock (_gate)
        {
            _renewer ??= RenewLoopAsync(TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(50).Ticks, _visibility.Ticks / 3)));
        }
    }

    /// <summary>
    /// Pushes back the leases of everything this transport holds (acked rows not yet deleted included), in one UPDATE by
    /// primary key, while it holds any: a transport that holds nothing sends nothing. A row another consumer took over
    /// meanwhile (its lease ran out) is not this one's any more, and the owner check leaves it alone.
    /// </summary>
    private async Task RenewLoopAsync(TimeSpan period)
    {
        await Task.Yield();
        using var timer = new PeriodicTimer(period, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_lifetime.Token).ConfigureAwait(false))
            {
                if (_held.IsEmpty)
                {
                    continue;
                }

                long[] ids = [.. _held.Keys];
                try
                {
                    await _db.RunAsync(
                        async c =>
                        {
                            using var renew = new NpgsqlCommand(Schema.Renew, c);
                            renew.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = _owner });
                            renew.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = _visibility, NpgsqlDbType = NpgsqlDbType.Interval });
                            renew.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
                            return await renew.ExecuteNonQueryAsync(_lifetime.Token).ConfigureAwait(false);
                        },
                        period,
                        _lifetime.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (PgDatabase.IsOutage(e))
                {
                    // Logged as the outage; the next tick tries again, well within the visibility timeout.
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
                {
                    Log.RenewFailed(_logger, _held.Count, _db.Display, e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Queues an ack: acks of the moment are deleted together in one statement. The row stays held (and renewed) until
    /// its delete succeeded, so an acked message is never taken again by anyone.
    /// </summary>
    private void EnqueueAck(long id)
    {
        _acks.Enqueue(id);
        lock (_ackGate)
        {
            if (!_ackRunning)
            {
                _ackRunning = true;
                _ackFlush = Task.Run(FlushAcksAsync);
            }
        }
    }

    private async Task FlushAcksAsync()
    {
        var ids = new List<long>(MaxBatch);
        while (true)
        {
            ids.Clear();
            while (ids.Count < 4096 && _acks.TryDequeue(out long id))
            {
                ids.Add(id);
            }

            if (ids.Count == 0)
            {
                lock (_ackGate)
                {
                    if (_acks.IsEmpty)
                    {
                        _ackRunning = false;
                        return;
                    }
                }

                continue;
            }

            long[] batch = [.. ids];
            try
            {
                await _db.RunAsync(
                    async c =>
                    {
                        using var delete = new NpgsqlCommand(Schema.Delete, c);
                        delete.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = batch, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
                        delete.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = _owner });
                        return await delete.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
                    },
                    s_settlePatience,
                    CancellationToken.None).ConfigureAwait(false);
                foreach (long id in batch)
                {
                    _held.TryRemove(id, out _);
                }
            }
            catch (Exception e)
            {
                // Not deleted: the rows' leases run out and the messages run again, rather than vanish.
                Log.SettleFailed(_logger, batch.Length, _db.Display, e);
                foreach (long id in batch)
                {
                    _held.TryRemove(id, out _);
                }
            }
        }
    }

    private async Task GiveBackAsync(long[] ids, CancellationToken ct)
    {
        await _db.RunAsync(
            async c =>
            {
                using var release = new NpgsqlCommand(Schema.Release, c);
                release.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = ids, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
                release.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = _owner });
                using NpgsqlDataReader reader = await release.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false);
                while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
                {
                }

                return true;
            },
            s_settlePatience,
            ct).ConfigureAwait(false);
        foreach (long id in ids)
        {
            _held.TryRemove(id, out _);
        }
    }

    /// <inheritdoc />
    public async ValueTask<IAsyncDisposable> SubscribeAsync(string exchange, Func<TransportMessage, ValueTask> handler, SubscriberBinding? queue = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(exchange);
        ArgumentNullException.ThrowIfNull(handler);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await EnsureSchemaAsync(ct).ConfigureAwait(false);
        if (!_fanoutExchanges.TryGetValue(exchange, out bool fanout) || !fanout)
        {
            _fanoutExchanges[exchange] = true;
            await _db.RunAsync(
                async c =>
                {
                    using var declare = new NpgsqlCommand(Schema.DeclareExchange, c);
                    declare.Parameters.Add(new NpgsqlParameter<string> { TypedValue = exchange });
                    declare.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "fanout" });
                    return await declare.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                },
                s_publishPatience,
                ct).ConfigureAwait(false);
        }

        // Subscribed once the LISTEN is in place: every message published after this returns is heard.
        var subscription = new FanoutSubscription(this, exchange, queue?.BindingKey, handler);
        _subscriptions.TryAdd(subscription, 0);
        await _listener.StartAsync(ct).ConfigureAwait(false);
        return subscription;
    }

    /// <summary>
    /// Fanout messages travel in the NOTIFY itself when they fit (payloads are limited to 8000 bytes): the common case,
    /// events and control commands, costs one statement and no row. Larger ones (an inspect reply of a big worker) go
    /// through a row of <c>celeriac_fanout</c> whose id is notified; later publishers delete rows older than a minute.
    /// As on Redis (pub/sub), a subscriber whose connection is down meanwhile misses what was published.
    /// </summary>
    private async Task PublishFanoutAsync(string exchange, string routingKey, IReadOnlyList<TransportMessage> messages, CancellationToken ct)
    {
        var notes = new string[messages.Count];
        var large = new List<(int Index, byte[] Payload)>();
        for (int i = 0; i < messages.Count; i++)
        {
            byte[] payload = KombuEnvelope.Encode(messages[i], exchange, routingKey);
            string head = exchange + "\n" + routingKey + "\n";
            if (payload.Length + Encoding.UTF8.GetByteCount(head) <= InlineFanoutLimit)
            {
                notes[i] = head + Encoding.UTF8.GetString(payload);
            }
            else
            {
                notes[i] = head;
                large.Add((i, payload));
            }
        }

        bool sweep = large.Count > 0 && Environment.TickCount64 - Interlocked.Read(ref _lastSweep) > 10_000;
        if (sweep)
        {
            Interlocked.Exchange(ref _lastSweep, Environment.TickCount64);
        }

        await _db.RunAsync(
            async c =>
            {
                // Inline notes alone are one statement (a heartbeat costs one round trip); rows and their notes share a transaction.
                using NpgsqlTransaction? tx = large.Count > 0 ? await c.BeginTransactionAsync(ct).ConfigureAwait(false) : null;
                string[] sent = [.. notes];
                foreach ((int index, byte[] payload) in large)
                {
                    using var insert = new NpgsqlCommand(Schema.InsertFanout, c, tx);
                    insert.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = payload });
                    long id = (long)(await insert.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
                    sent[index] = notes[index] + "#" + id.ToString(CultureInfo.InvariantCulture);
                }

                if (sweep)
                {
                    using var clean = new NpgsqlCommand(Schema.SweepFanout, c, tx);
                    await clean.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                if (sent.Length == 1)
                {
                    using var notify = new NpgsqlCommand(Schema.Notify, c, tx);
                    notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sent[0] });
                    await notify.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }
                else
                {
                    var batch = new NpgsqlBatch(c, tx);
                    await using (batch.ConfigureAwait(false))
                    {
                        foreach (string note in sent)
                        {
                            batch.BatchCommands.Add(Command(Schema.Notify, note));
                        }

                        await batch.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                    }
                }

                if (tx is not null)
                {
                    await tx.CommitAsync(ct).ConfigureAwait(false);
                }

                return true;
            },
            s_publishPatience,
            ct).ConfigureAwait(false);
    }

    private void OnFanoutNotification(string payload)
    {
        int first = payload.IndexOf('\n', StringComparison.Ordinal);
        int second = first < 0 ? -1 : payload.IndexOf('\n', first + 1);
        if (second < 0)
        {
            return;
        }

        string exchange = payload[..first];
        string routingKey = payload[(first + 1)..second];
        foreach (FanoutSubscription s in _subscriptions.Keys)
        {
            if (s.Wants(exchange, routingKey))
            {
                s.Post(payload[(second + 1)..]);
            }
        }
    }

    private void OnReconnected()
    {
        // Nothing to do for fanout (missed messages are missed, as with Redis pub/sub); consumers were pulsed.
    }

    /// <summary>
    /// Gives back every held, unsettled delivery, deletes what was acked, then closes. Rows that cannot be given back
    /// (the server is away) return after the visibility timeout.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (FanoutSubscription s in _subscriptions.Keys)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }

        long[] unsettled = [.. _held.Where(kv => kv.Value.TryClaimForShutdown()).Select(kv => kv.Key)];
        using (var patience = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            try
            {
                if (unsettled.Length > 0)
                {
                    await GiveBackAsync(unsettled, patience.Token).ConfigureAwait(false);
                }

                await _publishes.DrainAsync().WaitAsync(patience.Token).ConfigureAwait(false);

                Task acks;
                lock (_ackGate)
                {
                    acks = _ackFlush;
                }

                await acks.WaitAsync(patience.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (PgDatabase.IsOutage(e) || e is OperationCanceledException or TimeoutException)
            {
                // The server is away: the leases run out and a live consumer takes the messages again.
            }
        }

        await _lifetime.CancelAsync().ConfigureAwait(false);
        Task? renewer;
        lock (_gate)
        {
            renewer = _renewer;
        }

        if (renewer is not null)
        {
            await renewer.ConfigureAwait(false);
        }

        await _listener.DisposeAsync().ConfigureAwait(false);
        await _db.DisposeAsync().ConfigureAwait(false);
        _lifetime.Dispose();
    }

    /// <summary>
    /// Stops at once as a killed process does: no renewal, nothing given back, nothing acked; what it held returns
    /// after the visibility timeout. For tests.
    /// </summary>
    internal async ValueTask KillAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _lifetime.CancelAsync().ConfigureAwait(false);
        foreach (PgDelivery d in _held.Values)
        {
            d.TryClaimForShutdown();
        }

        _held.Clear();
        foreach (FanoutSubscription s in _subscriptions.Keys)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }

        await _listener.DisposeAsync().ConfigureAwait(false);
        await _db.DisposeAsync().ConfigureAwait(false);
    }

    private sealed class PgDelivery(PostgreSqlTransport owner, long id, string queue, TransportMessage? message, string? decodeError, bool redelivered, PrefetchWindow window)
        : Delivery(queue, message, decodeError, redelivered, window)
    {
        public long Id { get; } = id;

        /// <summary>Takes the delivery away from its holder at shutdown, unless the worker has claimed it.</summary>
        public bool TryClaimForShutdown() => !IsSettled && TryWithdraw();

        protected override ValueTask SettleAsync(bool? requeue, CancellationToken ct)
        {
            if (Volatile.Read(ref owner._disposed) != 0 && !owner._held.ContainsKey(Id))
            {
                // Already given back when the transport was disposed (or killed).
                return ValueTask.CompletedTask;
            }

            if (requeue == true)
            {
                return new ValueTask(owner.GiveBackAsync([Id], CancellationToken.None));
            }

            owner.EnqueueAck(Id);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>One subscriber: its messages are handled in order, one at a time, off the listener's connection.</summary>
    private sealed class FanoutSubscription : IAsyncDisposable
    {
        private readonly PostgreSqlTransport _owner;
        private readonly string _exchange;
        private readonly string? _bindingKey;
        private readonly Func<TransportMessage, ValueTask> _handler;
        private readonly Channel<string> _inbox = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
        private readonly Task _loop;

        public FanoutSubscription(PostgreSqlTransport owner, string exchange, string? bindingKey, Func<TransportMessage, ValueTask> handler)
        {
            _owner = owner;
            _exchange = exchange;
            _bindingKey = bindingKey is { Length: > 0 } and not "#" ? bindingKey : null;
            _handler = handler;
            _loop = Task.Run(RunAsync);
        }

        /// <summary>Whether the message is for this subscriber: its exchange, and its binding key where it has one (a topic).</summary>
        public bool Wants(string exchange, string routingKey) =>
            exchange == _exchange && (_bindingKey is null || routingKey.Length == 0 || TopicKeys.Matches(_bindingKey, routingKey));

        public void Post(string note) => _inbox.Writer.TryWrite(note);

        public async ValueTask DisposeAsync()
        {
            if (_owner._subscriptions.TryRemove(this, out _))
            {
                _inbox.Writer.TryComplete();
                await _loop.ConfigureAwait(false);
            }
        }

        private async Task RunAsync()
        {
            await foreach (string note in _inbox.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                try
                {
                    byte[]? raw = note.StartsWith('#') ? await ReadRowAsync(note).ConfigureAwait(false) : Encoding.UTF8.GetBytes(note);
                    if (raw is null)
                    {
                        Log.BadFanoutMessage(_owner._logger, _exchange, "its row is gone");
                        continue;
                    }

                    if (!KombuEnvelope.TryDecode(raw, out TransportMessage? message, out string? error))
                    {
                        Log.BadFanoutMessage(_owner._logger, _exchange, error ?? "unreadable");
                        continue;
                    }

                    await _handler(message!).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    Log.SubscriberFailed(_owner._logger, _exchange, e);
                }
            }
        }

        private async Task<byte[]?> ReadRowAsync(string note)
        {
            if (!long.TryParse(note.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out long id))
            {
                return null;
            }

            return await _owner._db.RunAsync(
                async c =>
                {
                    using var read = new NpgsqlCommand(Schema.ReadFanout, c);
                    read.Parameters.Add(new NpgsqlParameter<long> { TypedValue = id });
                    return await read.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false) as byte[];
                },
                s_publishPatience,
                CancellationToken.None).ConfigureAwait(false);
        }
    }

}
