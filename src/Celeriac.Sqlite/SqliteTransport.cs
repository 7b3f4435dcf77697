using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Celeriac.Protocol;
using Celeriac.Transport;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Celeriac.Sqlite;

/// <summary>
/// The embedded broker (<c>sqlite:///celeriac.db</c>): queues in one SQLite file that workers and clients
/// in several processes share. Messages are kombu's JSON envelopes. A consumer takes a batch of rows at
/// once and leases them (owner + time); while the transport lives it renews the leases of what it holds,
/// so only a dead consumer's messages become ready again, after the visibility timeout.
/// Writes of the moment (publishes, takes, acks) are committed together in one transaction.
/// </summary>
public sealed partial class SqliteTransport : ITransport, ICatchUpTransport
{
    // A fanout subscriber renews the store's watch of other processes' commits this often (the watch lasts a second),
    // and reads again for those commits no sooner than 1 ms, backing off to 250 ms, after a read that found nothing.
    private static readonly TimeSpan s_watchRenewal = TimeSpan.FromMilliseconds(900);
    private static readonly TimeSpan s_minQuiet = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan s_maxQuiet = TimeSpan.FromMilliseconds(250);

    private readonly SqliteStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly long _visibilityMs;
    private readonly string _owner = Guid.NewGuid().ToString("N");
    private readonly ConcurrentDictionary<long, SqliteDelivery> _held = new();
    private readonly ConcurrentDictionary<string, byte> _declared = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<FanoutSubscription, byte> _subscriptions = new();
    private readonly ConcurrentDictionary<ConsumeCatchUp, byte> _consumers = new();
    private readonly CancellationTokenSource _lifetime = new();
    private readonly Task _renewer;
    private int _disposed;
    private volatile bool _closed;

    /// <summary>Opens (creating if needed) the file named by the URL (<c>sqlite:///rel.db</c>, <c>sqlite:////abs.db</c>).</summary>
    public SqliteTransport(TransportOptions options)
        : this(options, SqliteStore.Acquire(UrlText.FilePath(Checked(options).Url), options.LoggerFactory))
    {
    }

    /// <summary>A transport on a given store (tests give it a private one to play another process).</summary>
    internal SqliteTransport(TransportOptions options, SqliteStore store)
    {
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _time = options.TimeProvider;
        _logger = options.LoggerFactory.CreateLogger("Celeriac.Sqlite");
        _visibilityMs = Math.Max(1, (long)options.VisibilityTimeout.TotalMilliseconds);
        _renewer = RenewLoopAsync(TimeSpan.FromMilliseconds(Math.Max(10, _visibilityMs / 3)));
    }

    /// <summary>The file's full path.</summary>
    public string Path => _store.Path;

    internal SqliteStore Store => _store;

    private static TransportOptions Checked(TransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options;
    }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <inheritdoc />
    public async ValueTask DeclareQueueAsync(QueueDeclaration queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        if (queue.Exchange.Length == 0)
        {
            return; // The default exchange routes by queue name; queues need no row.
        }

        string key = string.Join('\n', queue.Exchange, queue.ExchangeType, queue.RoutingKey ?? queue.Name, queue.Name);
        if (_declared.ContainsKey(key))
        {
            return;
        }

        ct.ThrowIfCancellationRequested();
        await _store.RunAsync(new WriteOp<bool>(c =>
        {
            DeclareExchange(c, queue.Exchange, queue.ExchangeType);
            SqliteCommand bind = c.Command(Schema.DeclareBinding);
            bind.Parameters["$exchange"].Value = queue.Exchange;
            bind.Parameters["$key"].Value = queue.RoutingKey ?? queue.Name;
            bind.Parameters["$queue"].Value = queue.Name;
            bind.ExecuteNonQuery();
            return true;
        })).ConfigureAwait(false);
        _declared.TryAdd(key, 0);
    }

    private static void DeclareExchange(WriteContext c, string exchange, string type)
    {
        SqliteCommand declare = c.Command(Schema.DeclareExchange);
        declare.Parameters["$exchange"].Value = exchange;
        declare.Parameters["$type"].Value = type;
        declare.ExecuteNonQuery();
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

        // Encode on the caller's thread, so the writer thread only binds and steps.
        var rows = new (byte[] Payload, int Priority)[messages.Count];
        for (int i = 0; i < rows.Length; i++)
        {
            TransportMessage m = messages[i];
            rows[i] = (KombuEnvelope.Encode(m, exchange, routingKey), m.Priority ?? 0);
        }

        // Once queued the write is not cancelled: the caller may not learn of a publish that happened,
        // but never of one that did not.
        await _store.RunAsync(new WriteOp<bool>(c => Insert(c, exchange, routingKey, rows))
        {
            WakesConsumers = true,
            WakesSubscribers = exchange.Length > 0,
        }).ConfigureAwait(false);
    }

    private bool Insert(WriteContext c, string exchange, string routingKey, (byte[] Payload, int Priority)[] rows)
    {
        if (exchange.Length > 0)
        {
            SqliteCommand typeOf = c.Command(Schema.ExchangeType);
            typeOf.Parameters["$exchange"].Value = exchange;

            // Celery's event and remote-control exchanges are fanout by definition (as on Redis), declared or not: an
            // event a client sends before any subscriber declared the exchange must not land in a queue named by its key.
            if (exchange is "celeryev" or "celery.pidbox" || typeOf.ExecuteScalar() is "fanout")
            {
                long now = Now;
                SqliteCommand fan = c.Command(Schema.InsertFanout);
                fan.Parameters["$exchange"].Value = exchange;
                fan.Parameters["$now"].Value = now;
                foreach ((byte[] payload, _) in rows)
                {
                    fan.Parameters["$payload"].Value = payload;
                    fan.ExecuteNonQuery();
                }

                SweepFanout(c, now);
                return true;
            }

            SqliteCommand bound = c.Command(Schema.BoundQueues);
            bound.Parameters["$exchange"].Value = exchange;
            bound.Parameters["$key"].Value = routingKey;
            List<string>? queues = null;
            using (SqliteDataReader reader = bound.ExecuteReader())
            {
                while (reader.Read())
                {
                    (queues ??= []).Add(reader.GetString(0));
                }
            }

            if (queues is not null)
            {
                foreach (string q in queues)
                {
                    InsertInto(c, q, rows);
                }

                return true;
            }
        }

        // The default exchange, or a direct exchange with no matching binding: the queue named by the key.
        InsertInto(c, routingKey, rows);
        return true;
    }

    private static void InsertInto(WriteContext c, string queue, (byte[] Payload, int Priority)[] rows)
    {
        SqliteCommand insert = c.Command(Schema.Insert);
        insert.Parameters["$queue"].Value = queue;
        foreach ((byte[] payload, int priority) in rows)
        {
            insert.Parameters["$priority"].Value = priority;
            insert.Parameters["$payload"].Value = payload;
            insert.ExecuteNonQuery();
        }
    }

    private static void SweepFanout(WriteContext c, long now)
    {
        // Subscribers read within milliseconds; a minute of history is plenty for a slow one.
        if (now - c.Store.LastFanoutSweep < 10_000)
        {
            return;
        }

        c.Store.LastFanoutSweep = now;
        SqliteCommand sweep = c.Command(Schema.SweepFanout);
        sweep.Parameters["$cutoff"].Value = now - 60_000;
        sweep.ExecuteNonQuery();
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<Delivery> ConsumeAsync(ConsumeOptions options, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        string[] queues = [.. options.Queues];
        if (queues.Length == 0)
        {
            yield break;
        }

        var window = new PrefetchWindow(options);
        var pending = new Queue<SqliteDelivery>();
        var catchUp = new ConsumeCatchUp(window);
        _consumers.TryAdd(catchUp, 0);
        int rotate = 0;
        try
        {
            while (!ct.IsCancellationRequested && !_lifetime.IsCancellationRequested)
            {
                catchUp.HandedOver();
                if (!await QuietlyAsync(window.WaitForRoomAsync(ct)).ConfigureAwait(false))
                {
                    break;
                }

                // Parks on the writer thread until rows are there (or ct/dispose), polling with back-off.
                List<TakenRow> rows = await TakeAsync(queues, window.Free, rotate++, catchUp, ct).ConfigureAwait(false);
                if (rows.Count == 0)
                {
                    continue;
                }

                window.Take(rows.Count);
                foreach (TakenRow row in rows)
                {
                    pending.Enqueue(CreateDelivery(row, window));
                }

                while (pending.Count > 0 && !ct.IsCancellationRequested)
                {
                    yield return pending.Dequeue();
                }
            }
        }
        finally
        {
            catchUp.Ended();
            _consumers.TryRemove(catchUp, out _);

            // Taken but never handed out (cancelled, or the caller stopped enumerating): give them back.
            if (pending.Count > 0)
            {
                await Task.WhenAll(pending.Select(d => d.RejectAsync(requeue: true).AsTask())).ConfigureAwait(false);
            }
        }
    }

    private SqliteDelivery CreateDelivery(TakenRow row, PrefetchWindow window)
    {
        // Bad bytes still make a delivery: the worker logs and acks it, so one bad row cannot block a queue.
        KombuEnvelope.TryDecode(row.Payload, out TransportMessage? message, out string? error);
        var delivery = new SqliteDelivery(this, row.Id, row.Queue, message, message is null ? error ?? "unreadable message" : null, row.Deliveries > 1, window);
        _held[row.Id] = delivery;
        return delivery;
    }

    private static async Task<bool> QuietlyAsync(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private readonly record struct TakenRow(long Id, string Queue, int Priority, long Deliveries, byte[] Payload);

    /// <inheritdoc />
    /// <remarks>
    /// A broadcast is read as soon as the writer sees another process commit, and a task only once a parked take has run
    /// again and its rows have reached the consumer: this wakes the writer, and waits for a take begun after the call.
    /// </remarks>
    public async ValueTask CatchUpAsync(CancellationToken ct = default)
    {
        Task met = Task.WhenAll(_consumers.Keys.Select(c => c.WaitAsync(ct)));
        _store.Wake();
        await met.ConfigureAwait(false);
    }

    private async Task<List<TakenRow>> TakeAsync(string[] queues, int count, int rotate, ConsumeCatchUp catchUp, CancellationToken ct)
    {
        // Cancelling only un-parks the take: rows it committed always reach the consumer (which gives
        // them back if it is stopping), so none is left leased to nobody. Each run of a parked take is a take of its
        // own for a catch-up: one that finds nothing meets it at once.
        var op = new WriteOp<List<TakenRow>>(c =>
        {
            long take = catchUp.BeginTake();
            List<TakenRow> rows = Take(c, queues, count, rotate);
            if (rows.Count == 0)
            {
                catchUp.Met(take);
            }

            return rows;
        }) { ParkWhen = static rows => rows.Count == 0 };
        var state = new CancelState(op, _store);
        using CancellationTokenRegistration byCaller = ct.UnsafeRegister(CancelState.Callback, state);
        using CancellationTokenRegistration byDispose = _lifetime.Token.UnsafeRegister(CancelState.Callback, state);
        _store.Enqueue(op);
        return await op.Task.ConfigureAwait(false);
    }

    private sealed record CancelState(WriteOp Op, SqliteStore Store)
    {
        public static readonly Action<object?> Callback = static s => ((CancelState)s!).Op.Cancel(((CancelState)s!).Store);
    }

    private List<TakenRow> Take(WriteContext c, string[] queues, int count, int rotate)
    {
        long now = Now;
        SqliteCommand take = c.Command(Schema.Take);
        take.Parameters["$owner"].Value = _owner;
        take.Parameters["$until"].Value = now + _visibilityMs;
        take.Parameters["$now"].Value = now;
        var rows = new List<TakenRow>(Math.Min(count, 256));
        int start = ((rotate % queues.Length) + queues.Length) % queues.Length;

        // Fair: first each queue's share, then whatever is left from queues that had more.
        int share = Math.Max(1, count / queues.Length);
        bool[]? full = queues.Length > 1 ? new bool[queues.Length] : null;
        for (int i = 0; i < queues.Length && rows.Count < count; i++)
        {
            int q = (start + i) % queues.Length;
            int want = Math.Min(share, count - rows.Count);
            int got = TakeFrom(take, queues[q], want, rows);
            if (full is not null)
            {
                full[q] = got == want;
            }
        }

        for (int i = 0; full is not null && i < queues.Length && rows.Count < count; i++)
        {
            int q = (start + i) % queues.Length;
            if (full[q])
            {
                TakeFrom(take, queues[q], count - rows.Count, rows);
            }
        }

        return rows;
    }

    private static int TakeFrom(SqliteCommand take, string queue, int limit, List<TakenRow> rows)
    {
        take.Parameters["$queue"].Value = queue;
        take.Parameters["$limit"].Value = limit;
        int first = rows.Count;
        using (SqliteDataReader reader = take.ExecuteReader())
        {
            while (reader.Read())
            {
                rows.Add(new TakenRow(reader.GetInt64(0), queue, reader.GetInt32(1), reader.GetInt64(2), reader.GetFieldValue<byte[]>(3)));
            }
        }

        // RETURNING has no order: restore priority (lower first), then FIFO.
        rows.Sort(first, rows.Count - first, TakenRowOrder.Instance);
        return rows.Count - first;
    }

    private sealed class TakenRowOrder : IComparer<TakenRow>
    {
        public static readonly TakenRowOrder Instance = new();

        public int Compare(TakenRow x, TakenRow y) => x.Priority != y.Priority ? x.Priority.CompareTo(y.Priority) : x.Id.CompareTo(y.Id);
    }

    private async Task RenewLoopAsync(TimeSpan period)
    {
        await Task.Yield();
        using var timer = new PeriodicTimer(period, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_lifetime.Token).ConfigureAwait(false))
            {
                await RenewAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Pushes back the lease of every held row, acked-but-not-yet-deleted ones included.</summary>
    private async Task RenewAsync()
    {
        long[] ids = [.. _held.Keys];
        if (ids.Length == 0)
        {
            return;
        }

        try
        {
            await _store.RunAsync(new WriteOp<bool>(c =>
            {
                SqliteCommand renew = c.Command(Schema.Renew);
                renew.Parameters["$until"].Value = Now + _visibilityMs;
                renew.Parameters["$owner"].Value = _owner;
                foreach (long id in ids)
                {
                    renew.Parameters["$id"].Value = id;
                    renew.ExecuteNonQuery();
                }

                return true;
            })).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SqliteException or ObjectDisposedException or InvalidOperationException)
        {
            Log.RenewFailed(_logger, ids.Length, _store.Path, ex);
        }
    }

    private void Delete(SqliteDelivery delivery)
    {
        // Not awaited: deletes of many acks share a commit. The row stays in _held (and so renewed)
        // until the delete committed, so an acked message is never taken again by anyone.
        _store.Enqueue(new WriteOp<bool>(
            c =>
            {
                SqliteCommand delete = c.Command(Schema.Delete);
                delete.Parameters["$id"].Value = delivery.Id;
                delete.Parameters["$owner"].Value = _owner;
                delete.ExecuteNonQuery();
                return true;
            },
            committed => _held.TryRemove(delivery.Id, out _),
            ex => Log.SettleFailed(_logger, delivery.Id, _store.Path, ex)));
    }

    private async ValueTask GiveBackAsync(SqliteDelivery delivery)
    {
        await _store.RunAsync(new WriteOp<bool>(
            c =>
            {
                SqliteCommand release = c.Command(Schema.Release);
                release.Parameters["$id"].Value = delivery.Id;
                release.Parameters["$owner"].Value = _owner;
                release.ExecuteNonQuery();
                return true;
            },
            committed => _held.TryRemove(delivery.Id, out _))
        {
            WakesConsumers = true,
        }).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<long> GetQueueLengthAsync(string queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ct.ThrowIfCancellationRequested();
        long now = Now;
        return ValueTask.FromResult(_store.Read(connection =>
        {
            using SqliteCommand count = connection.CreateCommand();
            count.CommandText = Schema.QueueLength;
            count.Parameters.AddWithValue("$queue", queue);
            count.Parameters.AddWithValue("$now", now);
            return (long)count.ExecuteScalar()!;
        }));
    }

    /// <inheritdoc />
    public async ValueTask<long> PurgeAsync(string queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ct.ThrowIfCancellationRequested();
        var op = new WriteOp<long>(c =>
        {
            SqliteCommand purge = c.Command(Schema.Purge);
            purge.Parameters["$queue"].Value = queue;
            purge.Parameters["$now"].Value = Now;
            return purge.ExecuteNonQuery();
        });
        _store.Enqueue(op);
        return await op.Task.ConfigureAwait(false);
    }
}
