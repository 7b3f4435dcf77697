using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Celeriac.Dashboard.Store;

/// <summary>
/// The default store: a SQLite file (<c>sqlite:///celeriac-dashboard.db</c>) in WAL mode, one writer connection
/// (a batch is one transaction) and pooled reader connections, so that pages read while events are written.
/// Flower's search runs as a SQLite function over the same matcher as the memory store's.
/// </summary>
public sealed class SqliteDashboardStore : IDashboardStore
{
    private static readonly JsonSerializerOptions s_json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private static readonly string[] s_columns =
    [
        "uuid", "state", "name", "sent", "received", "started", "succeeded", "failed", "retried", "revoked", "rejected", "timestamp",
        "runtime", "args", "kwargs", "result", "exception", "traceback", "worker", "retries", "eta", "expires", "routing_key",
        "exchange", "root_id", "parent_id", "client", "clock", "retry_of",
    ];

    private static readonly HashSet<string> s_replaced = new(StringComparer.Ordinal) { "state", "timestamp", "clock" };

    private readonly string _connectionString;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private SqliteConnection? _writer;

    private SqliteDashboardStore(string path)
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
    }

    /// <summary>The file's path.</summary>
    public string Path => new SqliteConnectionStringBuilder(_connectionString).DataSource;

    /// <summary>Opens (creating when missing) the store in a file.</summary>
    public static async Task<SqliteDashboardStore> OpenAsync(string path, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string? directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        var store = new SqliteDashboardStore(path);
        store._writer = await store.OpenConnectionAsync(ct).ConfigureAwait(false);
        using SqliteCommand create = store._writer.CreateCommand();
        create.CommandText = """
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=NORMAL;
            CREATE TABLE IF NOT EXISTS dashboard_tasks (
                uuid TEXT PRIMARY KEY, state TEXT NOT NULL, name TEXT, sent REAL, received REAL, started REAL,
                succeeded REAL, failed REAL, retried REAL, revoked REAL, rejected REAL, timestamp REAL NOT NULL,
                runtime REAL, args TEXT, kwargs TEXT, result TEXT, exception TEXT, traceback TEXT, worker TEXT,
                retries INTEGER, eta TEXT, expires TEXT, routing_key TEXT, exchange TEXT, root_id TEXT, parent_id TEXT,
                client TEXT, clock INTEGER NOT NULL, retry_of TEXT);
            CREATE INDEX IF NOT EXISTS dashboard_tasks_timestamp ON dashboard_tasks(timestamp);
            CREATE INDEX IF NOT EXISTS dashboard_tasks_name ON dashboard_tasks(name);
            CREATE INDEX IF NOT EXISTS dashboard_tasks_state ON dashboard_tasks(state);
            CREATE INDEX IF NOT EXISTS dashboard_tasks_parent ON dashboard_tasks(parent_id);
            CREATE INDEX IF NOT EXISTS dashboard_tasks_retry_of ON dashboard_tasks(retry_of);
            CREATE TABLE IF NOT EXISTS dashboard_events (
                id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL, type TEXT NOT NULL, timestamp REAL NOT NULL,
                hostname TEXT, fields TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS dashboard_events_uuid ON dashboard_events(uuid, id);
            CREATE TABLE IF NOT EXISTS dashboard_workers (hostname TEXT PRIMARY KEY, data TEXT NOT NULL);
            """;
        await create.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        return store;
    }

    private async Task<SqliteConnection> OpenConnectionAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(ct).ConfigureAwait(false);
        connection.CreateFunction("dash_match", (string q, string uuid, string? name, string? state, string? worker, string? args, string? kwargs, string? result) =>
            TaskSearch.Parse(q).Matches(uuid, name, state, worker, args, kwargs, result), isDeterministic: true);
        return connection;
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(DashboardBatch batch, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        await _writeGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            SqliteConnection connection = _writer ?? throw new ObjectDisposedException(nameof(SqliteDashboardStore));
            using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            if (batch.Tasks.Count > 0)
            {
                using SqliteCommand upsert = connection.CreateCommand();
                upsert.Transaction = tx;
                upsert.CommandText =
                    $"INSERT INTO dashboard_tasks ({string.Join(", ", s_columns)}) VALUES ({string.Join(", ", s_columns.Select(c => "$" + c))}) " +
                    $"ON CONFLICT(uuid) DO UPDATE SET {string.Join(", ", s_columns.Skip(1).Select(c => s_replaced.Contains(c) ? $"{c} = excluded.{c}" : $"{c} = coalesce(excluded.{c}, {c})"))}";
                var parameters = s_columns.ToDictionary(c => c, c => upsert.Parameters.Add(new SqliteParameter("$" + c, null)), StringComparer.Ordinal);
                upsert.Prepare();
                foreach (DashboardTask t in batch.Tasks)
                {
                    object?[] values =
                    [
                        t.Uuid, t.State, t.Name, t.Sent, t.Received, t.Started, t.Succeeded, t.Failed, t.Retried, t.Revoked, t.Rejected, t.Timestamp,
                        t.Runtime, t.Args, t.Kwargs, t.Result, t.Exception, t.Traceback, t.Worker, t.Retries, t.Eta, t.Expires, t.RoutingKey,
                        t.Exchange, t.RootId, t.ParentId, t.Client, t.Clock, t.RetryOf,
                    ];
                    for (int i = 0; i < s_columns.Length; i++)
                    {
                        parameters[s_columns[i]].Value = values[i] ?? DBNull.Value;
                    }

                    await upsert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }
            }

            if (batch.Events.Count > 0)
            {
                using SqliteCommand insert = connection.CreateCommand();
                insert.Transaction = tx;
                insert.CommandText = "INSERT INTO dashboard_events (uuid, type, timestamp, hostname, fields) VALUES ($u, $t, $ts, $h, $f)";
                SqliteParameter u = insert.Parameters.Add(new SqliteParameter("$u", null)), type = insert.Parameters.Add(new SqliteParameter("$t", null)),
                    ts = insert.Parameters.Add(new SqliteParameter("$ts", null)), h = insert.Parameters.Add(new SqliteParameter("$h", null)),
                    f = insert.Parameters.Add(new SqliteParameter("$f", null));
                insert.Prepare();
                foreach (TaskEventRecord e in batch.Events)
                {
                    (u.Value, type.Value, ts.Value, h.Value, f.Value) = (e.Uuid, e.Type, e.Timestamp, (object?)e.Hostname ?? DBNull.Value, e.FieldsJson);
                    await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }
            }

            if (batch.Workers.Count > 0)
            {
                using SqliteCommand upsert = connection.CreateCommand();
                upsert.Transaction = tx;
                upsert.CommandText = "INSERT INTO dashboard_workers (hostname, data) VALUES ($h, $d) ON CONFLICT(hostname) DO UPDATE SET data = excluded.data";
                SqliteParameter h = upsert.Parameters.Add(new SqliteParameter("$h", null)), d = upsert.Parameters.Add(new SqliteParameter("$d", null));
                foreach (DashboardWorker w in batch.Workers)
                {
                    (h.Value, d.Value) = (w.Hostname, JsonSerializer.Serialize(w, s_json));
                    await upsert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }
            }

            await tx.CommitAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask<DashboardTask?> GetTaskAsync(string uuid, CancellationToken ct = default)
    {
        using SqliteConnection connection = await OpenConnectionAsync(ct).ConfigureAwait(false);
        using SqliteCommand select = connection.CreateCommand();
        select.CommandText = $"SELECT {string.Join(", ", s_columns)} FROM dashboard_tasks WHERE uuid = $u";
        select.Parameters.AddWithValue("$u", uuid);
        using SqliteDataReader reader = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await reader.ReadAsync(ct).ConfigureAwait(false) ? ReadTask(reader) : null;
    }

    /// <inheritdoc />
    public async ValueTask<TaskPage> QueryTasksAsync(TaskQuery query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        (string field, bool descending) = query.Sort();
        using SqliteConnection connection = await OpenConnectionAsync(ct).ConfigureAwait(false);
        using SqliteCommand count = connection.CreateCommand();
        string where = Where(query, count);
        count.CommandText = "SELECT count(*) FROM dashboard_tasks" + where;
        long total = (long)(await count.ExecuteScalarAsync(ct).ConfigureAwait(false))!;

        using SqliteCommand select = connection.CreateCommand();
        Where(query, select);
        string direction = descending ? "DESC" : "ASC";
        select.CommandText = $"SELECT {string.Join(", ", s_columns)} FROM dashboard_tasks{where} ORDER BY {field} IS NOT NULL {direction}, {field} {direction}, uuid {direction} LIMIT $limit OFFSET $offset";
        select.Parameters.AddWithValue("$limit", Math.Max(0, query.Limit));
        select.Parameters.AddWithValue("$offset", Math.Max(0, query.Offset));
        var tasks = new List<DashboardTask>();
        using SqliteDataReader reader = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            tasks.Add(ReadTask(reader));
        }

        return new TaskPage(total, tasks);
    }

    private static string Where(TaskQuery q, SqliteCommand command)
    {
        var clauses = new List<string>();
        void Equal(string column, string? value)
        {
            if (value is not null)
            {
                clauses.Add($"{column} = ${column}");
                command.Parameters.AddWithValue("$" + column, value);
            }
        }

        Equal("name", q.Name);
        Equal("worker", q.Worker);
        Equal("state", q.State);
        Equal("parent_id", q.ParentId);
        Equal("retry_of", q.RetryOf);
        if (q.ReceivedStart is { } start)
        {
            clauses.Add("(received IS NULL OR received >= $rs)");
            command.Parameters.AddWithValue("$rs", start);
        }

        if (q.ReceivedEnd is { } end)
        {
            clauses.Add("(received IS NULL OR received <= $re)");
            command.Parameters.AddWithValue("$re", end);
        }

        if (q.Search is { MatchesAll: false } search)
        {
            clauses.Add("dash_match($q, uuid, name, state, worker, args, kwargs, result)");
            command.Parameters.AddWithValue("$q", search.Text);
        }

        return clauses.Count == 0 ? "" : " WHERE " + string.Join(" AND ", clauses);
    }

    private static DashboardTask ReadTask(SqliteDataReader r)
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
        using SqliteConnection connection = await OpenConnectionAsync(ct).ConfigureAwait(false);
        using SqliteCommand select = connection.CreateCommand();
        select.CommandText = "SELECT uuid, type, timestamp, hostname, fields FROM dashboard_events WHERE uuid = $u ORDER BY id LIMIT $limit";
        select.Parameters.AddWithValue("$u", uuid);
        select.Parameters.AddWithValue("$limit", limit);
        var events = new List<TaskEventRecord>();
        using SqliteDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            events.Add(new TaskEventRecord(r.GetString(0), r.GetString(1), r.GetDouble(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetString(4)));
        }

        return events;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<DashboardWorker>> GetWorkersAsync(CancellationToken ct = default)
    {
        using SqliteConnection connection = await OpenConnectionAsync(ct).ConfigureAwait(false);
        using SqliteCommand select = connection.CreateCommand();
        select.CommandText = "SELECT data FROM dashboard_workers ORDER BY hostname";
        var workers = new List<DashboardWorker>();
        using SqliteDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
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
        using SqliteConnection connection = await OpenConnectionAsync(ct).ConfigureAwait(false);
        using SqliteCommand select = connection.CreateCommand();
        select.CommandText = """
            SELECT name, received, succeeded, failed, retried, revoked, runtime FROM dashboard_tasks
            WHERE timestamp >= $since OR received >= $since
            """;
        select.Parameters.AddWithValue("$since", since);
        var stats = new StatsBuilder(since);
        using SqliteDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
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
        using SqliteConnection connection = await OpenConnectionAsync(ct).ConfigureAwait(false);
        using SqliteCommand select = connection.CreateCommand();
        select.CommandText = "SELECT DISTINCT name FROM dashboard_tasks WHERE name IS NOT NULL ORDER BY name";
        var names = new List<string>();
        using SqliteDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            names.Add(r.GetString(0));
        }

        return names;
    }

    /// <inheritdoc />
    public async ValueTask<long> PruneAsync(int maxTasks, double olderThan, CancellationToken ct = default)
    {
        await _writeGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            SqliteConnection connection = _writer ?? throw new ObjectDisposedException(nameof(SqliteDashboardStore));
            using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            using SqliteCommand mark = connection.CreateCommand();
            mark.Transaction = tx;

            // The doomed ids first, so that their events go with them in the same transaction.
            mark.CommandText = """
                CREATE TEMP TABLE IF NOT EXISTS dashboard_doomed (uuid TEXT PRIMARY KEY);
                DELETE FROM dashboard_doomed;
                INSERT OR IGNORE INTO dashboard_doomed SELECT uuid FROM dashboard_tasks WHERE timestamp < $old;
                INSERT OR IGNORE INTO dashboard_doomed SELECT uuid FROM dashboard_tasks ORDER BY timestamp DESC, uuid DESC LIMIT -1 OFFSET $max;
                DELETE FROM dashboard_events WHERE uuid IN (SELECT uuid FROM dashboard_doomed);
                DELETE FROM dashboard_tasks WHERE uuid IN (SELECT uuid FROM dashboard_doomed);
                """;
            mark.Parameters.AddWithValue("$old", olderThan);
            mark.Parameters.AddWithValue("$max", Math.Max(0, maxTasks));
            await mark.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            using SqliteCommand count = connection.CreateCommand();
            count.Transaction = tx;
            count.CommandText = "SELECT count(*) FROM dashboard_doomed";
            long removed = (long)(await count.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return removed;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _writeGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_writer is { } writer)
            {
                _writer = null;
                await writer.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

}
