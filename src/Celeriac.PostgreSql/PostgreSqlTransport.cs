using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Celeriac.Concurrency;
using Celeriac.Protocol;
using Celeriac.Transport;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Celeriac.PostgreSql;

/// <summary>
/// The PostgreSQL broker (<c>postgresql://user:password@host:port/database</c>): messages are rows of
/// <c>celeriac_messages</c> (kombu's JSON envelopes), created on first use (or by <c>schema.sql</c> /
/// <c>celeriac migrate</c>). A consumer takes a batch with <c>FOR UPDATE SKIP LOCKED</c> and leases it for the
/// visibility timeout in the same statement; while the transport lives it renews the leases of what it holds, so only
/// a dead consumer's messages become ready again. An ack deletes the row.
/// <para>
/// No polling when idle: a publisher's statement notifies the queue (<c>pg_notify</c>, sent at its commit) and a
/// consumer that found nothing sleeps on its LISTEN connection until then; the only timer it arms is for the earliest
/// lease it saw running out (a dead consumer's message), so a worker with nothing leased anywhere issues no statement.
/// </para>
/// </summary>
public sealed partial class PostgreSqlTransport : ITransport, ICatchUpTransport
{
    private const int MaxBatch = 256;
    private const int InlineFanoutLimit = 7000;
    private static readonly TimeSpan s_publishPatience = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan s_settlePatience = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan s_forever = TimeSpan.MaxValue;

    private readonly PgDatabase _db;
    private readonly PgListener _listener;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _visibility;
    private readonly Guid _owner = Guid.NewGuid();
    private readonly ConcurrentDictionary<long, PgDelivery> _held = new();
    private readonly ConcurrentDictionary<ConsumeCatchUp, byte> _consumers = new();
    private readonly ConcurrentDictionary<string, byte> _declared = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _fanoutExchanges = new(StringComparer.Ordinal) { ["celeryev"] = true, ["celery.pidbox"] = true };
    private readonly ConcurrentDictionary<FanoutSubscription, byte> _subscriptions = new();
    private readonly CancellationTokenSource _lifetime = new();
    private readonly Lock _gate = new();
    private readonly Batcher<PublishRow[]> _publishes;
    private Task<bool>? _schema;
    private Task? _renewer;
    private long _lastSweep;
    private int _disposed;

    /// <summary>Connects (lazily, reconnecting by itself) to the database named by <see cref="TransportOptions.Url"/>.</summary>
    public PostgreSqlTransport(TransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _logger = options.LoggerFactory.CreateLogger("Celeriac.PostgreSql");
        _db = new PgDatabase(options.Url, _logger, options.ConnectTimeout);
        _time = options.TimeProvider;
        _visibility = options.VisibilityTimeout > TimeSpan.Zero ? options.VisibilityTimeout : TimeSpan.FromHours(1);
        _listener = new PgListener(_db, OnFanoutNotification, OnReconnected);
        _publishes = new Batcher<PublishRow[]>(SendPublishesAsync);
    }

    /// <summary>The Npgsql connection string the URL means.</summary>
    internal string ConnectionString => _db.ConnectionString;

    private Task<bool> EnsureSchemaAsync(CancellationToken ct)
    {
        Task<bool> schema;
        lock (_gate)
        {
            if (_schema is null || _schema.IsFaulted || _schema.IsCanceled)
            {
                _schema = CreateSchemaAsync();
            }

            schema = _schema;
        }

        return schema.WaitAsync(ct);
    }

    private async Task<bool> CreateSchemaAsync()
    {
        await _db.EnsureSchemaAsync(_lifetime.Token).ConfigureAwait(false);
        return true;
    }

    /// <inheritdoc />
    public async ValueTask DeclareQueueAsync(QueueDeclaration queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        await EnsureSchemaAsync(ct).ConfigureAwait(false);
        if (queue.Exchange.Length == 0)
        {
            return; // The default exchange routes by queue name; a queue needs no row.
        }

        string key = string.Join('\n', queue.Exchange, queue.ExchangeType, queue.RoutingKey ?? queue.Name, queue.Name);
        if (_declared.ContainsKey(key))
        {
            return;
        }

        if (queue.ExchangeType == "fanout")
        {
            _fanoutExchanges[queue.Exchange] = true;
        }

        await _db.RunAsync(
            async c =>
            {
                var batch = new NpgsqlBatch(c);
                await using (batch.ConfigureAwait(false))
                {
                    batch.BatchCommands.Add(Command(Schema.DeclareExchange, queue.Exchange, queue.ExchangeType));
                    batch.BatchCommands.Add(Command(Schema.DeclareBinding, queue.Exchange, queue.RoutingKey ?? queue.Name, queue.Name));
                    await batch.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                return true;
            },
            s_publishPatience,
            ct).ConfigureAwait(false);
        _declared.TryAdd(key, 0);
    }

    private static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (object v in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = v });
        }

        return command;
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

        await EnsureSchemaAsync(ct).ConfigureAwait(false);
        if (exchange.Length > 0 && await IsFanoutAsync(exchange, ct).ConfigureAwait(false))
        {
            await PublishFanoutAsync(exchange, routingKey, messages, ct).ConfigureAwait(false);
            return;
        }

        var rows = new PublishRow[messages.Count];
        for (int i = 0; i < rows.Length; i++)
        {
            rows[i] = new PublishRow(exchange, routingKey, (short)Math.Clamp(messages[i].Priority ?? 0, 0, 255), KombuEnvelope.Encode(messages[i], exchange, routingKey));
        }

        // Publishes of the moment share one statement (while one is on the wire the next fills), so that many clients
        // sending at once cost a few commits, not one each. Once queued the batch is not cancelled: the caller may not
        // learn of a publish that happened, but never of one that did not.
        await _publishes.Enqueue(rows).WaitAsync(ct).ConfigureAwait(false);
    }

    private readonly record struct PublishRow(string Exchange, string RoutingKey, short Priority, byte[] Payload);

    /// <summary>
    /// Sends a batch of publishes in one statement, retried while the server is away (a retry after a connection lost
    /// mid-commit may store the batch twice: at least once).
    /// </summary>
    private async Task SendPublishesAsync(PublishRow[][] batches)
    {
        int count = batches.Sum(b => b.Length);
        string[] exchanges = new string[count], keys = new string[count];
        short[] priorities = new short[count];
        byte[][] payloads = new byte[count][];
        int i = 0;
        foreach (PublishRow[] batch in batches)
        {
            foreach (PublishRow row in batch)
            {
                (exchanges[i], keys[i], priorities[i], payloads[i]) = (row.Exchange, row.RoutingKey, row.Priority, row.Payload);
                i++;
            }
        }

        List<string> queues = await _db.RunAsync(
            async c =>
            {
                using var publish = new NpgsqlCommand(Schema.Publish, c);
                publish.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = exchanges, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                publish.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = keys, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                publish.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = priorities, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Smallint });
                publish.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = payloads, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
                var notified = new List<string>(1);
                using NpgsqlDataReader reader = await publish.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false);
                while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
                {
                    notified.Add(reader.GetString(0));
                }

                return notified;
            },
            s_publishPatience,
            CancellationToken.None).ConfigureAwait(false);

        // This process's consumers need not wait for the server's notification to come back.
        foreach (string q in queues)
        {
            _listener.Wake(q);
        }
    }

    private async ValueTask<bool> IsFanoutAsync(string exchange, CancellationToken ct)
    {
        if (_fanoutExchanges.TryGetValue(exchange, out bool fanout))
        {
            return fanout;
        }

        string? type = await _db.RunAsync(
            async c =>
            {
                using var select = new NpgsqlCommand(Schema.ExchangeType, c);
                select.Parameters.Add(new NpgsqlParameter<string> { TypedValue = exchange });
                return await select.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
            },
            s_publishPatience,
            ct).ConfigureAwait(false);

        // Only a declared exchange's type is remembered: one declared later by another process is looked up again.
        if (type is not null)
        {
            _fanoutExchanges[exchange] = type == "fanout";
        }

        return type == "fanout";
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<Delivery> ConsumeAsync(ConsumeOptions options, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        string[] queues = [.. options.Queues.Distinct(StringComparer.Ordinal)];
        if (queues.Length == 0)
        {
            yield break;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, _lifetime.Token);
        CancellationToken token = stop.Token;
        if (!await QuietlyAsync(EnsureSchemaAsync(token)).ConfigureAwait(false)
            || !await QuietlyAsync(_listener.StartAsync(token)).ConfigureAwait(false))
        {
            yield break;
        }

        StartRenewer();
        var window = new PrefetchWindow(options);
        var pending = new Queue<PgDelivery>();
        var catchUp = new ConsumeCatchUp(window);
        _consumers.TryAdd(catchUp, 0);
        int rotate = 0;
        try
        {
            while (!token.IsCancellationRequested)
            {
                catchUp.HandedOver();
                if (!await QuietlyAsync(window.WaitForRoomAsync(token)).ConfigureAwait(false))
                {
                    break;
                }

                // Taken before looking: a notification that comes while the take runs wakes the next wait at once.
                Task wake = _listener.WaitAnyAsync(queues);
                long take = catchUp.BeginTake(out Task asked);
                List<TakenRow>? rows = await TakeAsync(queues, Math.Min(window.Free, MaxBatch), rotate++, token).ConfigureAwait(false);
                if (rows is null)
                {
                    break;
                }

                if (rows.Count == 0)
                {
                    catchUp.Met(take);
                    if (!catchUp.Pending && !await IdleAsync(queues, Task.WhenAny(wake, asked), token).ConfigureAwait(false))
                    {
                        break;
                    }

                    continue;
                }

                window.Take(rows.Count);
                foreach (TakenRow row in rows)
                {
                    pending.Enqueue(CreateDelivery(row, window));
                }

                while (pending.Count > 0 && !token.IsCancellationRequested)
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

    /// <inheritdoc />
    /// <remarks>A task's notification and a broadcast's come on one connection, but the broadcast is handled at once and the task only once a take has read its row.</remarks>
    public async ValueTask CatchUpAsync(CancellationToken ct = default) =>
        await Task.WhenAll(_consumers.Keys.Select(c => c.WaitAsync(ct))).ConfigureAwait(false);

    /// <summary>
    /// Sleeps until a publisher notifies one of the queues, or until the earliest lease on them runs out (a dead
    /// consumer's message becomes ready then); with nothing leased, no timer at all. Returns false when cancelled.
    /// </summary>
    private async Task<bool> IdleAsync(string[] queues, Task wake, CancellationToken ct)
    {
        double? seconds = await _db.RunAsync(
            async c =>
            {
                using var select = new NpgsqlCommand(Schema.EarliestExpiry, c);
                select.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = queues, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                object? value = await select.ExecuteScalarAsync(ct).ConfigureAwait(false);
                return value is double d ? d : (double?)null;
            },
            s_forever,
            ct).ConfigureAwait(false);

        try
        {
            if (seconds is { } s)
            {
                // A little after the expiry, so that the server's clock has passed it too.
                TimeSpan until = TimeSpan.FromSeconds(Math.Clamp(s, 0, TimeSpan.FromDays(1).TotalSeconds)) + TimeSpan.FromMilliseconds(20);
                await Task.WhenAny(wake, Task.Delay(until, _time, ct)).ConfigureAwait(false);
            }
            else
            {
                await wake.WaitAsync(ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }

        return !ct.IsCancellationRequested;
    }

    private readonly record struct TakenRow(long Id, string Queue, int Priority, int Deliveries, byte[] Payload);

    /// <summary>Takes up to <paramref name="count"/> rows, each queue its share first; null when cancelled.</summary>
    private async Task<List<TakenRow>?> TakeAsync(string[] queues, int count, int rotate, CancellationToken ct)
    {
        try
        {
            return await _db.RunAsync(c => TakeAsync(c, queues, count, rotate), s_forever, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return null;
        }
    }

    private async Task<List<TakenRow>> TakeAsync(NpgsqlConnection c, string[] queues, int count, int rotate)
    {
        using var take = new NpgsqlCommand(Schema.Take, c);
        var queue = new NpgsqlParameter<string>();
        var limit = new NpgsqlParameter<int>();
        take.Parameters.Add(queue);
        take.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = _owner });
        take.Parameters.Add(limit);
        take.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = _visibility, NpgsqlDbType = NpgsqlDbType.Interval });
        var rows = new List<TakenRow>(Math.Min(count, MaxBatch));
        int start = ((rotate % queues.Length) + queues.Length) % queues.Length;

        // Fair: first each queue's share, then whatever is left from queues that had more. Statements run without a
        // cancellation token: rows a take committed always reach the consumer (which gives them back if it stops).
        int share = Math.Max(1, count / queues.Length);
        bool[] full = new bool[queues.Length];
        for (int i = 0; i < queues.Length && rows.Count < count; i++)
        {
            int q = (start + i) % queues.Length;
            int want = Math.Min(share, count - rows.Count);
            full[q] = await TakeFromAsync(take, queue, limit, queues[q], want, rows).ConfigureAwait(false) == want;
        }

        for (int i = 0; queues.Length > 1 && i < queues.Length && rows.Count < count; i++)
        {
            int q = (start + i) % queues.Length;
            if (full[q])
            {
                await TakeFromAsync(take, queue, limit, queues[q], count - rows.Count, rows).ConfigureAwait(false);
            }
        }

        return rows;
    }

    private static async Task<int> TakeFromAsync(NpgsqlCommand take, NpgsqlParameter<string> queue, NpgsqlParameter<int> limit, string name, int want, List<TakenRow> rows)
    {
        queue.TypedValue = name;
        limit.TypedValue = want;
        int first = rows.Count;
        using (NpgsqlDataReader reader = await take.ExecuteReaderAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                rows.Add(new TakenRow(reader.GetInt64(0), name, reader.GetInt16(1), reader.GetInt32(2), reader.GetFieldValue<byte[]>(3)));
            }
        }

        // RETURNING has no order: restore priority (lower first), then FIFO.
        rows.Sort(first, rows.Count - first, Comparer<TakenRow>.Create(static (x, y) => x.Priority != y.Priority ? x.Priority.CompareTo(y.Priority) : x.Id.CompareTo(y.Id)));
        return rows.Count - first;
    }

    private PgDelivery CreateDelivery(TakenRow row, PrefetchWindow window)
    {
        // Bad bytes still make a delivery: the worker logs and acks it, so one bad row cannot block a queue.
        KombuEnvelope.TryDecode(row.Payload, out TransportMessage? message, out string? error);
        var delivery = new PgDelivery(this, row.Id, row.Queue, message, message is null ? error ?? "unreadable message" : null, row.Deliveries > 1, window);
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

    /// <inheritdoc />
    public async ValueTask<long> GetQueueLengthAsync(string queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        await EnsureSchemaAsync(ct).ConfigureAwait(false);
        return await _db.RunAsync(
            async c =>
            {
                using var count = new NpgsqlCommand(Schema.QueueLength, c);
                count.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
                return (long)(await count.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            },
            s_publishPatience,
            ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<long> PurgeAsync(string queue, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(queue);
        await EnsureSchemaAsync(ct).ConfigureAwait(false);
        return await _db.RunAsync(
            async c =>
            {
                using var purge = new NpgsqlCommand(Schema.Purge, c);
                purge.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
                return (long)await purge.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            },
            s_publishPatience,
            ct).ConfigureAwait(false);
    }
}
