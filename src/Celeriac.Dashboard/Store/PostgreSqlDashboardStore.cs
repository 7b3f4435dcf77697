using System.Runtime.CompilerServices;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace Celeriac.Dashboard.Store;

/// <summary>
/// A store on PostgreSQL (<c>postgresql://user:pass@host:port/db</c>): the tables <c>celeriac_dashboard_tasks</c>,
/// <c>celeriac_dashboard_events</c> and <c>celeriac_dashboard_workers</c>, created on first use (under an advisory lock,
/// so that dashboards starting together do not race), indexed for the orderings and filters. A batch is one transaction
/// of multi-row upserts (a null field keeps the stored value).
/// </summary>
/// <remarks>
/// Filters on state, name, worker, parent, retried task and receive time run in SQL; Flower's search runs in this
/// process (<see cref="TaskSearch.Matches(DashboardTask)"/>, the one definition of a match) over the rows those filters
/// leave (narrowed by the search's own <c>state:</c> term), so a search over N stored tasks reads N rows' searchable
/// fields; the page itself is sorted and cut in SQL.
/// </remarks>
public sealed class PostgreSqlDashboardStore : IDashboardStore
{
    private const long SchemaLock = 0x63656c6461736801; // "celdash" + 1: one key for this store's DDL.

    private static readonly JsonSerializerOptions s_json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private static readonly (string Name, NpgsqlDbType Type)[] s_columns =
    [
        ("uuid", NpgsqlDbType.Text), ("state", NpgsqlDbType.Text), ("name", NpgsqlDbType.Text), ("sent", NpgsqlDbType.Double),
        ("received", NpgsqlDbType.Double), ("started", NpgsqlDbType.Double), ("succeeded", NpgsqlDbType.Double), ("failed", NpgsqlDbType.Double),
        ("retried", NpgsqlDbType.Double), ("revoked", NpgsqlDbType.Double), ("rejected", NpgsqlDbType.Double), ("timestamp", NpgsqlDbType.Double),
        ("runtime", NpgsqlDbType.Double), ("args", NpgsqlDbType.Text), ("kwargs", NpgsqlDbType.Text), ("result", NpgsqlDbType.Text),
        ("exception", NpgsqlDbType.Text), ("traceback", NpgsqlDbType.Text), ("worker", NpgsqlDbType.Text), ("retries", NpgsqlDbType.Bigint),
        ("eta", NpgsqlDbType.Text), ("expires", NpgsqlDbType.Text), ("routing_key", NpgsqlDbType.Text), ("exchange", NpgsqlDbType.Text),
        ("root_id", NpgsqlDbType.Text), ("parent_id", NpgsqlDbType.Text), ("client", NpgsqlDbType.Text), ("clock", NpgsqlDbType.Bigint),
        ("retry_of", NpgsqlDbType.Text),
    ];

    private static readonly HashSet<string> s_replaced = new(StringComparer.Ordinal) { "state", "timestamp", "clock" };

    private static readonly string s_select = "SELECT " + string.Join(", ", s_columns.Select(c => Quote(c.Name))) + " FROM celeriac_dashboard_tasks";

    private static readonly string s_upsert =
        $"INSERT INTO celeriac_dashboard_tasks AS t ({string.Join(", ", s_columns.Select(c => Quote(c.Name)))}) " +
        $"SELECT * FROM unnest({string.Join(", ", s_columns.Select((c, i) => $"${i + 1}"))}) " +
        $"ON CONFLICT (uuid) DO UPDATE SET {string.Join(", ", s_columns.Skip(1).Select(c => s_replaced.Contains(c.Name) ? $"{Quote(c.Name)} = excluded.{Quote(c.Name)}" : $"{Quote(c.Name)} = coalesce(excluded.{Quote(c.Name)}, t.{Quote(c.Name)})"))}";

    private readonly NpgsqlDataSource _source;

    private PostgreSqlDashboardStore(NpgsqlDataSource source) => _source = source;

    private static string Quote(string column) => column == "timestamp" ? "\"timestamp\"" : column;

    /// <summary>Connects to the database a URL names and creates the tables when missing.</summary>
    public static async Task<PostgreSqlDashboardStore> OpenAsync(string url, CancellationToken ct = default)
    {
        NpgsqlDataSource source = NpgsqlDataSource.Create(ConnectionStringOf(url));
        try
        {
            NpgsqlConnection connection = await source.OpenConnectionAsync(ct).ConfigureAwait(false);
            await using ConfiguredAsyncDisposable connectionLifetime = connection.ConfigureAwait(false);
            NpgsqlTransaction tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            await using ConfiguredAsyncDisposable txLifetime = tx.ConfigureAwait(false);
            NpgsqlCommand create = new($"""
                SELECT pg_advisory_xact_lock({SchemaLock});
                CREATE TABLE IF NOT EXISTS celeriac_dashboard_tasks (
                    uuid text PRIMARY KEY, state text NOT NULL, name text, sent double precision, received double precision,
                    started double precision, succeeded double precision, failed double precision, retried double precision,
                    revoked double precision, rejected double precision, "timestamp" double precision NOT NULL, runtime double precision,
                    args text, kwargs text, result text, exception text, traceback text, worker text, retries bigint, eta text,
                    expires text, routing_key text, exchange text, root_id text, parent_id text, client text, clock bigint NOT NULL,
                    retry_of text);
                CREATE INDEX IF NOT EXISTS celeriac_dashboard_tasks_timestamp ON celeriac_dashboard_tasks ("timestamp", uuid COLLATE "C");
                CREATE INDEX IF NOT EXISTS celeriac_dashboard_tasks_received ON celeriac_dashboard_tasks (received);
                CREATE INDEX IF NOT EXISTS celeriac_dashboard_tasks_name ON celeriac_dashboard_tasks (name);
                CREATE INDEX IF NOT EXISTS celeriac_dashboard_tasks_state ON celeriac_dashboard_tasks (state);
                CREATE INDEX IF NOT EXISTS celeriac_dashboard_tasks_worker ON celeriac_dashboard_tasks (worker);
                CREATE INDEX IF NOT EXISTS celeriac_dashboard_tasks_parent ON celeriac_dashboard_tasks (parent_id);
                CREATE INDEX IF NOT EXISTS celeriac_dashboard_tasks_retry_of ON celeriac_dashboard_tasks (retry_of);
                CREATE TABLE IF NOT EXISTS celeriac_dashboard_events (
                    id bigserial PRIMARY KEY, uuid text NOT NULL, type text NOT NULL, "timestamp" double precision NOT NULL,
                    hostname text, fields text NOT NULL);
                CREATE INDEX IF NOT EXISTS celeriac_dashboard_events_uuid ON celeriac_dashboard_events (uuid, id);
                CREATE TABLE IF NOT EXISTS celeriac_dashboard_workers (hostname text PRIMARY KEY, data text NOT NULL);
                """, connection, tx);
            await using ConfiguredAsyncDisposable createLifetime = create.ConfigureAwait(false);
            await create.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return new PostgreSqlDashboardStore(source);
        }
        catch
        {
            await source.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>An Npgsql connection string from <c>postgresql://user:pass@host:port/db[?npgsql options]</c>; an <see cref="ArgumentException"/> for a bad one.</summary>
    internal static string ConnectionStringOf(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) || uri.Scheme is not ("postgresql" or "postgres"))
        {
            throw new ArgumentException("bad PostgreSQL store URL: write postgresql://user:pass@host:port/db");
        }

        var b = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host.Length > 0 ? uri.Host : "localhost",
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Timeout = 10,
        };
        string user = "postgres";
        if (uri.UserInfo.Length > 0)
        {
            string[] parts = uri.UserInfo.Split(':', 2);
            user = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                b.Password = Uri.UnescapeDataString(parts[1]);
            }
        }

        b.Username = user;
        string db = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        b.Database = db.Length > 0 ? db : user;
        foreach (string pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] kv = pair.Split('=', 2);
            string key = Uri.UnescapeDataString(kv[0]);
            try
            {
                b[key] = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "true";
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"bad PostgreSQL store URL: unknown option '{key}': {e.Message}", e);
            }
        }

        return b.ConnectionString;
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(DashboardBatch batch, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(batch);

        // One row per id: an upsert may not touch a row twice, so a batch's updates of a task are merged first, as the memory store does.
        var tasks = new Dictionary<string, DashboardTask>(StringComparer.Ordinal);
        foreach (DashboardTask t in batch.Tasks)
        {
            tasks[t.Uuid] = tasks.TryGetValue(t.Uuid, out DashboardTask? earlier) ? MemoryDashboardStore.Merge(earlier, t) : t;
        }

        var workers = new Dictionary<string, DashboardWorker>(StringComparer.Ordinal);
        foreach (DashboardWorker w in batch.Workers)
        {
            workers[w.Hostname] = w;
        }

        NpgsqlConnection connection = await _source.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using ConfiguredAsyncDisposable connectionLifetime = connection.ConfigureAwait(false);
        NpgsqlTransaction tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using ConfiguredAsyncDisposable txLifetime = tx.ConfigureAwait(false);
        if (tasks.Count > 0)
        {
            // In id order, so that two dashboards writing overlapping batches lock rows in the same order and do not deadlock.
            DashboardTask[] rows = [.. tasks.Values.OrderBy(t => t.Uuid, StringComparer.Ordinal)];
            NpgsqlCommand upsert = new(s_upsert, connection, tx);
            await using ConfiguredAsyncDisposable upsertLifetime = upsert.ConfigureAwait(false);
            object[] columns =
            [
                rows.Select(t => t.Uuid).ToArray(), rows.Select(t => t.State).ToArray(), rows.Select(t => t.Name).ToArray(),
                rows.Select(t => t.Sent).ToArray(), rows.Select(t => t.Received).ToArray(), rows.Select(t => t.Started).ToArray(),
                rows.Select(t => t.Succeeded).ToArray(), rows.Select(t => t.Failed).ToArray(), rows.Select(t => t.Retried).ToArray(),
                rows.Select(t => t.Revoked).ToArray(), rows.Select(t => t.Rejected).ToArray(), rows.Select(t => t.Timestamp).ToArray(),
                rows.Select(t => t.Runtime).ToArray(), rows.Select(t => t.Args).ToArray(), rows.Select(t => t.Kwargs).ToArray(),
                rows.Select(t => t.Result).ToArray(), rows.Select(t => t.Exception).ToArray(), rows.Select(t => t.Traceback).ToArray(),
                rows.Select(t => t.Worker).ToArray(), rows.Select(t => t.Retries).ToArray(), rows.Select(t => t.Eta).ToArray(),
                rows.Select(t => t.Expires).ToArray(), rows.Select(t => t.RoutingKey).ToArray(), rows.Select(t => t.Exchange).ToArray(),
                rows.Select(t => t.RootId).ToArray(), rows.Select(t => t.ParentId).ToArray(), rows.Select(t => t.Client).ToArray(),
                rows.Select(t => t.Clock).ToArray(), rows.Select(t => t.RetryOf).ToArray(),
            ];
            for (int i = 0; i < s_columns.Length; i++)
            {
                upsert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | s_columns[i].Type, Value = columns[i] });
            }

            await upsert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        if (batch.Events.Count > 0)
        {
            // In the batch's order, so that a task's timeline reads back as it was appended.
            NpgsqlCommand insert = new("""
                INSERT INTO celeriac_dashboard_events (uuid, type, "timestamp", hostname, fields)
                SELECT u, ty, ts, h, f FROM unnest($1::text[], $2::text[], $3::double precision[], $4::text[], $5::text[]) WITH ORDINALITY AS e(u, ty, ts, h, f, n)
                ORDER BY n
                """, connection, tx);
            await using ConfiguredAsyncDisposable insertLifetime = insert.ConfigureAwait(false);
            insert.Parameters.Add(new NpgsqlParameter { Value = batch.Events.Select(e => e.Uuid).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter { Value = batch.Events.Select(e => e.Type).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter { Value = batch.Events.Select(e => e.Timestamp).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = batch.Events.Select(e => e.Hostname).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter { Value = batch.Events.Select(e => e.FieldsJson).ToArray() });
            await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        if (workers.Count > 0)
        {
            NpgsqlCommand upsert = new("""
                INSERT INTO celeriac_dashboard_workers (hostname, data) SELECT * FROM unnest($1::text[], $2::text[])
                ON CONFLICT (hostname) DO UPDATE SET data = excluded.data
                """, connection, tx);
            await using ConfiguredAsyncDisposable upsertLifetime = upsert.ConfigureAwait(false);
            DashboardWorker[] rows = [.. workers.Values.OrderBy(w => w.Hostname, StringComparer.Ordinal)];
            upsert.Parameters.Add(new NpgsqlParameter { Value = rows.Select(w => w.Hostname).ToArray() });
            upsert.Parameters.Add(new NpgsqlParameter { Value = rows.Select(w => JsonSerializer.Serialize(w, s_json)).ToArray() });
            await upsert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<DashboardTask?> GetTaskAsync(string uuid, CancellationToken ct = default)
    {
        NpgsqlCommand select = _source.CreateCommand(s_select + " WHERE uuid = $1");
        await using ConfiguredAsyncDisposable selectLifetime = select.ConfigureAwait(false);
        select.Parameters.Add(new NpgsqlParameter { Value = uuid });
        NpgsqlDataReader reader = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await using ConfiguredAsyncDisposable readerLifetime = reader.ConfigureAwait(false);
        return await reader.ReadAsync(ct).ConfigureAwait(false) ? ReadTask(reader) : null;
    }

    /// <inheritdoc />
    public async ValueTask<TaskPage> QueryTasksAsync(TaskQuery query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        (string field, bool descending) = query.Sort();
        var parameters = new List<NpgsqlParameter>();
        string[]? searchStates = null;
        if (query.Search?.Required("state") is { } state)
        {
            // The search's own state: term ignores case as this process does (not as the database's lower() might):
            // the states stored are few, so they are listed and compared here, and SQL keeps the rows of those that match.
            var states = new List<string>();
            NpgsqlCommand distinct = _source.CreateCommand("SELECT DISTINCT state FROM celeriac_dashboard_tasks");
            await using ConfiguredAsyncDisposable distinctLifetime = distinct.ConfigureAwait(false);
            NpgsqlDataReader r = await distinct.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using ConfiguredAsyncDisposable rLifetime = r.ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                if (string.Equals(r.GetString(0).ToLowerInvariant(), state, StringComparison.Ordinal))
                {
                    states.Add(r.GetString(0));
                }
            }

            searchStates = [.. states];
        }

        string where = Where(query, searchStates, parameters);
        if (query.Search is { MatchesAll: false } search)
        {
            // The search in this process over the rows the SQL filters leave; their ids then go back to SQL for the page.
            var ids = new List<string>();
            NpgsqlCommand candidates = _source.CreateCommand($"SELECT uuid, name, state, worker, args, kwargs, result FROM celeriac_dashboard_tasks{where}");
            await using (candidates.ConfigureAwait(false))
            {
                candidates.Parameters.AddRange(parameters.ToArray());
                NpgsqlDataReader r = await candidates.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await using ConfiguredAsyncDisposable rLifetime = r.ConfigureAwait(false);
                while (await r.ReadAsync(ct).ConfigureAwait(false))
                {
                    string? S(int i) => r.IsDBNull(i) ? null : r.GetString(i);
                    if (search.Matches(r.GetString(0), S(1), S(2), S(3), S(4), S(5), S(6)))
                    {
                        ids.Add(r.GetString(0));
                    }
                }
            }

            parameters = [new NpgsqlParameter { Value = ids.ToArray() }];
            where = " WHERE uuid = ANY($1)";
        }

        long total;
        NpgsqlCommand count = _source.CreateCommand("SELECT count(*) FROM celeriac_dashboard_tasks" + where);
        await using (count.ConfigureAwait(false))
        {
            count.Parameters.AddRange(parameters.Select(p => p.Clone()).ToArray());
            total = (long)(await count.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }

        // Text by code point (COLLATE "C"), nulls first ascending and last descending, ties by id: the order every store lists in.
        string direction = descending ? "DESC" : "ASC";
        string nulls = descending ? "NULLS LAST" : "NULLS FIRST";
        string collate = s_columns.First(c => c.Name == field).Type == NpgsqlDbType.Text ? " COLLATE \"C\"" : "";
        NpgsqlCommand select = _source.CreateCommand(
            $"{s_select}{where} ORDER BY {Quote(field)}{collate} {direction} {nulls}, uuid COLLATE \"C\" {direction} LIMIT {Math.Max(0, query.Limit)} OFFSET {Math.Max(0, query.Offset)}");
        await using ConfiguredAsyncDisposable selectLifetime = select.ConfigureAwait(false);
        select.Parameters.AddRange(parameters.Select(p => p.Clone()).ToArray());
        var tasks = new List<DashboardTask>();
        NpgsqlDataReader reader = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await using ConfiguredAsyncDisposable readerLifetime = reader.ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            tasks.Add(ReadTask(reader));
        }

        return new TaskPage(total, tasks);
    }

    private static string Where(TaskQuery q, string[]? searchStates, List<NpgsqlParameter> parameters)
    {
        var clauses = new List<string>();
        string Add(object value)
        {
            parameters.Add(new NpgsqlParameter { Value = value });
            return "$" + parameters.Count;
        }

        foreach ((string column, string? value) in new[] { ("name", q.Name), ("worker", q.Worker), ("state", q.State), ("parent_id", q.ParentId), ("retry_of", q.RetryOf) })
        {
            if (value is not null)
            {
                clauses.Add($"{column} = {Add(value)}");
            }
        }

        if (q.ReceivedStart is { } start)
        {
            clauses.Add($"(received IS NULL OR received >= {Add(start)})");
        }

        if (q.ReceivedEnd is { } end)
        {
            clauses.Add($"(received IS NULL OR received <= {Add(end)})");
        }

        if (searchStates is not null)
        {
            clauses.Add($"state = ANY({Add(searchStates)})");
        }

        return clauses.Count == 0 ? "" : " WHERE " + string.Join(" AND ", clauses);
    }

    private static DashboardTask ReadTask(NpgsqlDataReader r)
    {
        string? S(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        double? D(int i) => r.IsDBNull(i) ? null : r.GetDouble(i);
        return new DashboardTask
        {
            Uuid = r.GetString(0), State = r.GetString(1), Name = S(2), Sent = D(3), Received = D(4), Started = D(5), Succeeded = D(6),
            Failed = D(7), Retried = D(8), Revoked = D(9), Rejected = D(10), Timestamp = r.GetDouble(11), Runtime = D(12), Args = S(13),
            Kwargs = S(14), Result = S(15), Exception = S(16), Traceback = S(17), Worker = S(18), Retries = r.IsDBNull(19) ? null : r.GetInt64(19),
            Eta = S(20), Expires = S(21), RoutingKey = S(22), Exchange = S(23), RootId = S(24), ParentId = S(25), Client = S(26),
            Clock = r.GetInt64(27), RetryOf = S(28),
        };
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<TaskEventRecord>> GetEventsAsync(string uuid, int limit = 1000, CancellationToken ct = default)
    {
        NpgsqlCommand select = _source.CreateCommand("""SELECT uuid, type, "timestamp", hostname, fields FROM celeriac_dashboard_events WHERE uuid = $1 ORDER BY id LIMIT $2""");
        await using ConfiguredAsyncDisposable selectLifetime = select.ConfigureAwait(false);
        select.Parameters.Add(new NpgsqlParameter { Value = uuid });
        select.Parameters.Add(new NpgsqlParameter { Value = (long)Math.Max(0, limit) });
        var events = new List<TaskEventRecord>();
        NpgsqlDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await using ConfiguredAsyncDisposable rLifetime = r.ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            events.Add(new TaskEventRecord(r.GetString(0), r.GetString(1), r.GetDouble(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetString(4)));
        }

        return events;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<DashboardWorker>> GetWorkersAsync(CancellationToken ct = default)
    {
        NpgsqlCommand select = _source.CreateCommand("SELECT data FROM celeriac_dashboard_workers ORDER BY hostname COLLATE \"C\"");
        await using ConfiguredAsyncDisposable selectLifetime = select.ConfigureAwait(false);
        var workers = new List<DashboardWorker>();
        NpgsqlDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await using ConfiguredAsyncDisposable rLifetime = r.ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            if (JsonSerializer.Deserialize<DashboardWorker>(r.GetString(0), s_json) is { } w)
            {
                workers.Add(w);
            }
        }

        return workers;
    }

    /// <inheritdoc />
    public async ValueTask<DashboardStats> GetStatsAsync(double since, CancellationToken ct = default)
    {
        NpgsqlCommand select = _source.CreateCommand("""
            SELECT name, received, succeeded, failed, retried, revoked, runtime FROM celeriac_dashboard_tasks
            WHERE "timestamp" >= $1 OR received >= $1
            """);
        await using ConfiguredAsyncDisposable selectLifetime = select.ConfigureAwait(false);
        select.Parameters.Add(new NpgsqlParameter { Value = since });
        var stats = new StatsBuilder(since);
        NpgsqlDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await using ConfiguredAsyncDisposable rLifetime = r.ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            double? D(int i) => r.IsDBNull(i) ? null : r.GetDouble(i);
            stats.Add(r.IsDBNull(0) ? null : r.GetString(0), D(1), D(2), D(3), D(4), D(5), D(6));
        }

        return stats.Build();
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<string>> GetTaskNamesAsync(CancellationToken ct = default)
    {
        NpgsqlCommand select = _source.CreateCommand("SELECT DISTINCT name COLLATE \"C\" FROM celeriac_dashboard_tasks WHERE name IS NOT NULL ORDER BY 1");
        await using ConfiguredAsyncDisposable selectLifetime = select.ConfigureAwait(false);
        var names = new List<string>();
        NpgsqlDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await using ConfiguredAsyncDisposable rLifetime = r.ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            names.Add(r.GetString(0));
        }

        return names;
    }

    /// <inheritdoc />
    public async ValueTask<long> PruneAsync(int maxTasks, double olderThan, CancellationToken ct = default)
    {
        // One statement: the doomed ids (too old, then beyond the newest maxTasks), their events and themselves.
        NpgsqlCommand prune = _source.CreateCommand("""
            WITH doomed AS (
                SELECT uuid FROM celeriac_dashboard_tasks WHERE "timestamp" < $1
                UNION
                SELECT uuid FROM (SELECT uuid FROM celeriac_dashboard_tasks ORDER BY "timestamp" DESC, uuid COLLATE "C" DESC OFFSET $2) beyond),
            events AS (DELETE FROM celeriac_dashboard_events WHERE uuid IN (SELECT uuid FROM doomed)),
            tasks AS (DELETE FROM celeriac_dashboard_tasks WHERE uuid IN (SELECT uuid FROM doomed) RETURNING 1)
            SELECT count(*) FROM tasks
            """);
        await using ConfiguredAsyncDisposable pruneLifetime = prune.ConfigureAwait(false);
        prune.Parameters.Add(new NpgsqlParameter { Value = olderThan });
        prune.Parameters.Add(new NpgsqlParameter { Value = (long)Math.Max(0, maxTasks) });
        return (long)(await prune.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await _source.DisposeAsync().ConfigureAwait(false);
}
