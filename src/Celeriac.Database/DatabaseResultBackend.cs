using System.Data.Common;
using System.Text;
using System.Text.Json;
using Celeriac.Database.Pickle;
using Celeriac.Results;
using Microsoft.Extensions.Logging;

namespace Celeriac.Database;

/// <summary>
/// Celery's database result backend (<c>db+postgresql://</c>, <c>db+mysql://</c>, <c>db+mariadb://</c>,
/// <c>db+sqlite:///path</c>): Celery's <c>celery_taskmeta</c> and <c>celery_tasksetmeta</c> tables (names from
/// <c>database_table_names</c> and <c>database_table_schemas</c>), with results pickled as SQLAlchemy's
/// <c>PickleType</c> stores them, so that Python Celery on the same URL reads and writes the same rows. Tables are
/// created on first use when missing, as Celery's <c>prepare_models</c> does.
/// </summary>
/// <remarks>
/// <para>Results are read with <see cref="RestrictedUnpickler"/>: a row whose pickle would import or call code is refused
/// with a clear <see cref="UnpicklingException"/> for that task, and nothing runs.</para>
/// <para>Celeriac adds two tables that Celery ignores: <c>&lt;task table&gt;_celeriac</c> (a task's group, parent,
/// children and expiry, which Celery's table has no columns for) and <c>&lt;group table&gt;_celeriac_chord</c> (the
/// chord join: Celery's database backend has no counter and polls with <c>chord_unlock</c>). The join is one
/// transaction per header member.</para>
/// <para>Expiry (<c>result_expires</c>): a result reads as missing once expired (a Python-written row by its
/// <c>date_done</c>), and expired rows are deleted at most every ten minutes by a write, as Celery's
/// <c>backend_cleanup</c> task would (<see cref="CleanupAsync"/>).</para>
/// <para>Waiting: on PostgreSQL a trigger on the task table NOTIFYs each written task id (Python's writes too) and a
/// LISTEN connection wakes the waiter at once; MySQL/MariaDB and SQLite poll, backing off to
/// <see cref="ResultBackendOptions.PollInterval"/>.</para>
/// </remarks>
public sealed class DatabaseResultBackend : KeyValueResultBackend
{
    private static readonly TimeSpan s_cleanupEvery = TimeSpan.FromMinutes(10);
    private readonly SqlDialect _dialect;
    private readonly KeyWaiterTable _waiters = new();
    private readonly ILogger _logger;
    private readonly DatabaseOutage _outage;
    private readonly SemaphoreSlim _createGate = new(1, 1);
    private readonly Dictionary<string, Task> _writing = new(StringComparer.Ordinal);
    private readonly object _listenGate = new();
    private volatile bool _created;
    private bool _hasExtendedColumns = true;
    private PostgresNotifications? _notifications;
    private long _lastCleanup;
    private int _disposed;

    /// <summary>Creates the backend for a <c>db+...</c> URL (connections open on first use).</summary>
    public DatabaseResultBackend(ResultBackendOptions options) : base(options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _logger = options.LoggerFactory.CreateLogger<DatabaseResultBackend>();
        Url = DatabaseUrl.Parse(options.Url);
        TableNames names = Names(options);
        string connection = Url.ConnectionString(poolSize: 50, connectTimeoutSeconds: Math.Max(1, (int)Math.Ceiling(options.ConnectTimeout.TotalSeconds)));
        _outage = new DatabaseOutage(UrlText.Mask(options.Url), options.ConnectTimeout, _logger);
        _dialect = Url.Engine switch
        {
            DatabaseEngine.PostgreSql => new PostgresDialect(names, connection),
            DatabaseEngine.MySql => new MySqlDialect(names, connection),
            _ => new SqliteDialect(names, connection),
        };
        _lastCleanup = Now;
    }

    internal DatabaseUrl Url { get; }

    /// <summary>The task table's name (<c>database_table_names["task"]</c>). <value>celery_taskmeta</value></summary>
    public string TaskTable => _dialect.Names.Task;

    /// <summary>The group table's name (<c>database_table_names["group"]</c>). <value>celery_tasksetmeta</value></summary>
    public string GroupTable => _dialect.Names.Group;

    private static TableNames Names(ResultBackendOptions options)
    {
        Dictionary<string, string> tables = Setting(options, "database_table_names");
        Dictionary<string, string> schemas = Setting(options, "database_table_schemas");
        return new TableNames(
            tables.GetValueOrDefault("task") ?? "celery_taskmeta",
            tables.GetValueOrDefault("group") ?? "celery_tasksetmeta",
            schemas.GetValueOrDefault("task"),
            schemas.GetValueOrDefault("group"));
    }

    /// <summary>A setting whose value is a dict (JSON, or Python's literal with single quotes).</summary>
    private static Dictionary<string, string> Setting(ResultBackendOptions options, string name)
    {
        string? text = options.Setting(name);
        if (string.IsNullOrWhiteSpace(text))
        {
            return [];
        }

        try
        {
            using JsonDocument doc = JsonDocument.Parse(text.Trim().StartsWith("{'", StringComparison.Ordinal) ? text.Replace('\'', '"') : text);
            return doc.RootElement.EnumerateObject()
                .Where(p => p.Value.ValueKind == JsonValueKind.String)
                .ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal);
        }
        catch (JsonException e)
        {
            throw new ImproperlyConfiguredException($"{name} must be a dict such as {{\"task\": \"my_taskmeta\", \"group\": \"my_groupmeta\"}}, not {text}: {e.Message}");
        }
    }

    private long Now => Options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    private long? ExpiresAt => Options.ResultExpires is { } e ? Now + (long)e.TotalMilliseconds : null;

    /// <inheritdoc />
    protected override KeyWaiterTable Waiters => _waiters;

    /// <inheritdoc />
    protected override async ValueTask WatchAsync(string key, CancellationToken ct)
    {
        if (_dialect is not PostgresDialect pg)
        {
            return;
        }

        // Through the outage rules, as every read: a server never reached fails here after the connect timeout.
        await _outage.RunAsync(OpenAsync, static (_, _) => Task.FromResult(true), DatabaseOutage.ReadPatience, idempotent: true, ct).ConfigureAwait(false);
        PostgresNotifications notifications;
        lock (_listenGate)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            notifications = _notifications ??= new PostgresNotifications(
                pg.ConnectionString, pg.Channel, id => Wake(TaskKeyPrefix + id), WakeAll, _logger);
        }

        // A server that cannot be reached leaves the waiter polling rather than stuck here.
        try
        {
            await notifications.Listening.WaitAsync(TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    private void WakeAll()
    {
        foreach (string key in _waiters.Keys)
        {
            Wake(key);
        }
    }

    /// <summary>Creates the tables (and PostgreSQL's notify trigger) when missing; once per backend.</summary>
    private async ValueTask EnsureCreatedAsync(CancellationToken ct)
    {
        if (_created)
        {
            return;
        }

        await _createGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_created)
            {
                return;
            }

            // As Celery's prepare_models: another process (SQLAlchemy checks, then creates) may create the same tables at
            // the same moment and make this attempt fail; the next attempt finds them.
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    await CreateAsync(ct).ConfigureAwait(false);
                    break;
                }
                catch (DbException e) when (attempt < 5 && !DatabaseOutage.IsOutage(e, ct))
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(50 << attempt), ct).ConfigureAwait(false);
                }
            }

            _created = true;
        }
        finally
        {
            _createGate.Release();
        }
    }

    private async Task CreateAsync(CancellationToken ct)
    {
        DbConnection connection = await _dialect.OpenAsync(ct).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable connectionScope = connection.ConfigureAwait(false);
        await RunStatementsAsync(connection, _dialect.CreateStatements(), ct).ConfigureAwait(false);

        // Celery without result_extended creates the task table without the extended columns; use them only if there.
        DbCommand columns = Command(connection, null, $"SELECT * FROM {_dialect.Task} WHERE 1 = 0");
        await using (columns.ConfigureAwait(false))
        {
            DbDataReader r = await columns.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (r.ConfigureAwait(false))
            {
                _hasExtendedColumns = Enumerable.Range(0, r.FieldCount).Any(i => string.Equals(r.GetName(i), "worker", StringComparison.OrdinalIgnoreCase));
            }
        }

        try
        {
            await RunStatementsAsync(connection, _dialect.AfterCreateStatements(), ct).ConfigureAwait(false);
        }
        catch (DbException e)
        {
            Log.TriggerFailed(_logger, _dialect.Names.Task, e);
        }
    }

    private static async Task RunStatementsAsync(DbConnection connection, IEnumerable<string> statements, CancellationToken ct)
    {
        List<string> all = [.. statements];
        if (all.Count == 0)
        {
            return;
        }

        DbTransaction tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);

        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable txScope = tx.ConfigureAwait(false);
        foreach (string sql in all)
        {
            DbCommand command = Command(connection, tx, sql);
            await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable commandScope = command.ConfigureAwait(false);
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    private async ValueTask<DbConnection> OpenAsync(CancellationToken ct)
    {
        await EnsureCreatedAsync(ct).ConfigureAwait(false);
        return await _dialect.OpenAsync(ct).ConfigureAwait(false);
    }

    private static DbCommand Command(DbConnection connection, DbTransaction? tx, string sql)
    {
        DbCommand command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        return command;
    }

    private static void Add(DbCommand command, string name, object? value)
    {
        DbParameter p = command.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        command.Parameters.Add(p);
    }

    private static (string Kind, string Id) Split(string key) =>
        key.StartsWith(TaskKeyPrefix, StringComparison.Ordinal) ? ("task", key[TaskKeyPrefix.Length..])
        : key.StartsWith(GroupKeyPrefix, StringComparison.Ordinal) ? ("group", key[GroupKeyPrefix.Length..])
        : key.StartsWith(ChordKeyPrefix, StringComparison.Ordinal) ? ("chord", key[ChordKeyPrefix.Length..])
        : throw new ArgumentException("not a result key: " + key, nameof(key));

    /// <inheritdoc />
    protected override async ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct)
    {
        (string kind, string id) = Split(key);
        return kind switch
        {
            "task" => await ReadTaskAsync(id, ct).ConfigureAwait(false) is { } meta ? meta.Encode() : null,
            "group" => await ReadGroupAsync(id, ct).ConfigureAwait(false),
            _ => throw new NotSupportedException("chord counters are read by the join"),
        };
    }

    private Task<TaskResultMeta?> ReadTaskAsync(string taskId, CancellationToken ct) =>
        _outage.RunAsync(OpenAsync, (connection, ct) => ReadTaskAsync(connection, taskId, ct), DatabaseOutage.ReadPatience, idempotent: true, ct);

    private async Task<TaskResultMeta?> ReadTaskAsync(DbConnection connection, string taskId, CancellationToken ct)
    {
        DbCommand select = Command(connection, null,
            $"SELECT t.status, t.result, t.date_done, t.traceback, {(_hasExtendedColumns ? "t.name, t.args, t.kwargs, t.worker, t.retries, t.queue" : "NULL, NULL, NULL, NULL, NULL, NULL")}, " +
            $"x.group_id, x.parent_id, x.children, x.expires_at FROM {_dialect.Task} t LEFT JOIN {_dialect.TaskExtra} x ON x.task_id = t.task_id WHERE t.task_id = @task_id");
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable selectScope = select.ConfigureAwait(false);
        Add(select, "@task_id", taskId);
        DbDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable rScope = r.ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false))
        {
            return null;
        }

        DateTimeOffset? done = r.IsDBNull(2) ? null : _dialect.ReadDate(r, 2);
        if (IsExpired(r.IsDBNull(13) ? null : r.GetInt64(13), done))
        {
            return null;
        }

        byte[] result;
        try
        {
            result = r.IsDBNull(1) ? "null"u8.ToArray() : RestrictedUnpickler.ToJson(r.GetFieldValue<byte[]>(1));
        }
        catch (UnpicklingException e)
        {
            throw new UnpicklingException($"The result of task {taskId} in {_dialect.Names.Task} cannot be read: {e.Message}", e);
        }

        ResultExtension? extended = null;
        if (Options.ResultExtended && (!r.IsDBNull(4) || !r.IsDBNull(7)))
        {
            extended = new ResultExtension(
                r.IsDBNull(4) ? null : r.GetString(4),
                r.IsDBNull(5) ? default : r.GetFieldValue<byte[]>(5),
                r.IsDBNull(6) ? default : r.GetFieldValue<byte[]>(6),
                r.IsDBNull(7) ? null : r.GetString(7),
                r.IsDBNull(8) ? 0 : Convert.ToInt32(r.GetValue(8), System.Globalization.CultureInfo.InvariantCulture),
                r.IsDBNull(9) ? null : r.GetString(9));
        }

        return new TaskResultMeta
        {
            TaskId = taskId,
            Status = r.GetString(0),
            Result = result,
            DateDone = done,
            Traceback = r.IsDBNull(3) ? null : r.GetString(3),
            GroupId = r.IsDBNull(10) ? null : r.GetString(10),
            ParentId = r.IsDBNull(11) ? null : r.GetString(11),
            Children = r.IsDBNull(12) ? "[]"u8.ToArray() : Encoding.UTF8.GetBytes(r.GetString(12)),
            Extended = extended,
        };
    }

    private bool IsExpired(long? expiresAt, DateTimeOffset? done)
    {
        if (expiresAt is { } at)
        {
            return Now >= at;
        }

        // A row Python wrote: Celery's cleanup would delete it once date_done is older than result_expires.
        return done is { } d && Options.ResultExpires is { } e && d + e <= Options.TimeProvider.GetUtcNow();
    }

    private Task<byte[]?> ReadGroupAsync(string groupId, CancellationToken ct) =>
        _outage.RunAsync(OpenAsync, (connection, ct) => ReadGroupAsync(connection, groupId, ct), DatabaseOutage.ReadPatience, idempotent: true, ct);

    private async Task<byte[]?> ReadGroupAsync(DbConnection connection, string groupId, CancellationToken ct)
    {
        DbCommand select = Command(connection, null, $"SELECT result, date_done FROM {_dialect.Group} WHERE taskset_id = @group_id");
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable selectScope = select.ConfigureAwait(false);
        Add(select, "@group_id", groupId);
        DbDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable rScope = r.ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false) || r.IsDBNull(0) || IsExpired(null, r.IsDBNull(1) ? null : _dialect.ReadDate(r, 1)))
        {
            return null;
        }

        byte[] tuples;
        try
        {
            tuples = RestrictedUnpickler.ReadGroupResult(r.GetFieldValue<byte[]>(0));
        }
        catch (UnpicklingException e)
        {
            throw new UnpicklingException($"The group {groupId} in {_dialect.Names.Group} cannot be read: {e.Message}", e);
        }

        // As Celery's key-value backends keep it: {"result": GroupResult.as_tuple()}.
        return [.. "{\"result\":"u8, .. tuples, .. "}"u8];
    }

    /// <inheritdoc />
    protected override async ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct)
    {
        (string kind, string id) = Split(key);
        if (kind == "task")
        {
            await WriteTaskInTurnAsync(TaskResultMeta.Parse(value), ct).ConfigureAwait(false);
            Wake(key);
        }
        else if (kind == "group")
        {
            JsonElement tuples = MemberTuples(value) ?? throw new ArgumentException("not a group document: " + Encoding.UTF8.GetString(value), nameof(value));
            await _outage.RunAsync(
                OpenAsync,
                async (connection, ct) =>
                {
                    DbCommand upsert = Command(connection, null, _dialect.UpsertGroup());
                    await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable upsertScope = upsert.ConfigureAwait(false);
                    AddGroup(upsert, id, tuples);
                    return await upsert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                },
                DatabaseOutage.WritePatience,
                idempotent: true,
                ct).ConfigureAwait(false);
        }
        else
        {
            throw new NotSupportedException("chord counters are written by the join");
        }

        await CleanupNowAndThenAsync(ct).ConfigureAwait(false);
    }

    private void AddGroup(DbCommand command, string groupId, JsonElement tuples)
    {
        Add(command, "@group_id", groupId);
        Add(command, "@result", PickleWriter.WriteGroupResult(groupId, tuples));
        Add(command, "@date_done", _dialect.Date(Options.TimeProvider.GetUtcNow()));
    }

    /// <summary>
    /// Writes a task's state after the writes of the same task this process began before it. Each write has a pooled
    /// connection of its own, so without this a retry's RETRY (written while its next run goes ahead) could commit after
    /// that run's FAILURE or SUCCESS and stay as the final state (seen when the first write waits for a new database).
    /// </summary>
    private async Task WriteTaskInTurnAsync(TaskResultMeta meta, CancellationToken ct)
    {
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task before;
        lock (_writing)
        {
            before = _writing.GetValueOrDefault(meta.TaskId) ?? Task.CompletedTask;
            _writing[meta.TaskId] = mine.Task;
        }

        try
        {
            await before.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await WriteTaskAsync(meta, ct).ConfigureAwait(false);
        }
        finally
        {
            lock (_writing)
            {
                if (_writing.TryGetValue(meta.TaskId, out Task? last) && last == mine.Task)
                {
                    _writing.Remove(meta.TaskId);
                }
            }

            mine.SetResult();
        }
    }

    private Task<bool> WriteTaskAsync(TaskResultMeta meta, CancellationToken ct)
    {
        byte[] pickle = PickleWriter.FromJson(meta.Result.Span);
        return _outage.RunAsync(OpenAsync, (connection, ct) => WriteTaskAsync(connection, meta, pickle, ct), DatabaseOutage.WritePatience, idempotent: true, ct);
    }

    private async Task<bool> WriteTaskAsync(DbConnection connection, TaskResultMeta meta, byte[] pickle, CancellationToken ct)
    {
        bool extended = meta.Extended is not null && _hasExtendedColumns;
        DbTransaction tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable txScope = tx.ConfigureAwait(false);
        DbCommand upsert = Command(connection, tx, _dialect.UpsertTask(extended));
        await using (upsert.ConfigureAwait(false))
        {
            Add(upsert, "@task_id", meta.TaskId);
            Add(upsert, "@status", meta.Status);
            Add(upsert, "@result", pickle);
            Add(upsert, "@date_done", meta.DateDone is { } done ? _dialect.Date(done) : null);
            Add(upsert, "@traceback", meta.Traceback);
            if (extended && meta.Extended is { } x)
            {
                // Celery keeps args and kwargs encoded with the result serializer (JSON text) as bytes.
                Add(upsert, "@name", x.Name);
                Add(upsert, "@args", x.Args.IsEmpty ? null : x.Args.ToArray());
                Add(upsert, "@kwargs", x.Kwargs.IsEmpty ? null : x.Kwargs.ToArray());
                Add(upsert, "@worker", x.Worker);
                Add(upsert, "@retries", x.Retries);
                Add(upsert, "@queue", x.Queue);
            }

            await upsert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        DbCommand extra = Command(connection, tx, _dialect.UpsertTaskExtra());

        await using (extra.ConfigureAwait(false))
        {
            Add(extra, "@task_id", meta.TaskId);
            Add(extra, "@group_id", meta.GroupId);
            Add(extra, "@parent_id", meta.ParentId);
            Add(extra, "@children", meta.Children.Span.SequenceEqual("[]"u8) ? null : Encoding.UTF8.GetString(meta.Children.Span));
            Add(extra, "@expires_at", TaskStates.IsReady(meta.Status) ? ExpiresAt : null);
            await extra.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        return true;
    }

    /// <inheritdoc />
    protected override async ValueTask DeleteValueAsync(string key, CancellationToken ct)
    {
        (string kind, string id) = Split(key);
        string[] statements = kind switch
        {
            "task" => [$"DELETE FROM {_dialect.Task} WHERE task_id = @id", $"DELETE FROM {_dialect.TaskExtra} WHERE task_id = @id"],
            "group" => [$"DELETE FROM {_dialect.Group} WHERE taskset_id = @id"],
            _ => [$"DELETE FROM {_dialect.Chord} WHERE group_id = @id"],
        };
        await _outage.RunAsync(OpenAsync, (connection, ct) => RunEachAsync(connection, statements, [("@id", id)], ct), DatabaseOutage.WritePatience, idempotent: true, ct).ConfigureAwait(false);
    }

    /// <summary>Runs each statement with the same parameters, outside a transaction.</summary>
    private static async Task<bool> RunEachAsync(DbConnection connection, IEnumerable<string> statements, (string Name, object Value)[] parameters, CancellationToken ct)
    {
        foreach (string sql in statements)
        {
            DbCommand command = Command(connection, null, sql);
            await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable commandScope = command.ConfigureAwait(false);
            foreach ((string name, object value) in parameters)
            {
                Add(command, name, value);
            }

            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        return true;
    }

    /// <inheritdoc />
    protected override async ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct)
    {
        (string kind, string id) = Split(key);
        if (kind != "chord")
        {
            throw new NotSupportedException("only chord counters are incremented");
        }

        return await _outage.RunAsync(
            OpenAsync,
            async (connection, ct) =>
            {
                DbTransaction tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
                await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable txScope = tx.ConfigureAwait(false);
                (long done, _, _, _) = await IncrementAsync(connection, tx, id, ct).ConfigureAwait(false);
                await tx.CommitAsync(ct).ConfigureAwait(false);
                return done;
            },
            DatabaseOutage.WritePatience,
            idempotent: false,
            ct).ConfigureAwait(false);
    }

    /// <summary>Adds one to the chord's counter and reads its row, in the caller's transaction (which holds the row).</summary>
    private async Task<(long Done, long Size, string Members, string? Nested)> IncrementAsync(DbConnection connection, DbTransaction tx, string groupId, CancellationToken ct)
    {
        DbCommand increment = Command(connection, tx, _dialect.IncrementChord());
        await using (increment.ConfigureAwait(false))
        {
            Add(increment, "@group_id", groupId);
            Add(increment, "@expires_at", ExpiresAt);
            await increment.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        DbCommand select = Command(connection, tx, $"SELECT done, size, members, nested FROM {_dialect.Chord} WHERE group_id = @group_id{_dialect.ForUpdate}");

        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable selectScope = select.ConfigureAwait(false);
        Add(select, "@group_id", groupId);
        DbDataReader r = await select.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable rScope = r.ConfigureAwait(false);
        await r.ReadAsync(ct).ConfigureAwait(false);
        return (Convert.ToInt64(r.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), Convert.ToInt64(r.GetValue(1), System.Globalization.CultureInfo.InvariantCulture), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3));
    }

    /// <summary>
    /// Saves the header as a group (a pickled GroupResult, as Celery's <c>apply_chord</c> does) and starts Celeriac's
    /// join row, in one transaction.
    /// </summary>
    public override async ValueTask BeginChordAsync(string groupId, IReadOnlyList<string> headerIds, int size, ReadOnlyMemory<byte> nestedHeader = default, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(headerIds);
        using JsonDocument tuples = JsonDocument.Parse(nestedHeader.IsEmpty ? FlatTuples(headerIds) : nestedHeader);
        List<string> members = [];
        LeafIds(tuples.RootElement, members);
        await _outage.RunAsync(OpenAsync, (connection, ct) => BeginChordAsync(connection, groupId, tuples.RootElement, members, size, nestedHeader, ct), DatabaseOutage.WritePatience, idempotent: true, ct).ConfigureAwait(false);
    }

    private async Task<bool> BeginChordAsync(DbConnection connection, string groupId, JsonElement tuples, List<string> members, int size, ReadOnlyMemory<byte> nestedHeader, CancellationToken ct)
    {
        DbTransaction tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable txScope = tx.ConfigureAwait(false);
        DbCommand group = Command(connection, tx, _dialect.UpsertGroup());
        await using (group.ConfigureAwait(false))
        {
            AddGroup(group, groupId, tuples);
            await group.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        DbCommand chord = Command(connection, tx, _dialect.UpsertChord());

        await using (chord.ConfigureAwait(false))
        {
            Add(chord, "@group_id", groupId);
            Add(chord, "@size", size);
            Add(chord, "@members", JsonSerializer.Serialize(members));
            Add(chord, "@nested", nestedHeader.IsEmpty ? null : Encoding.UTF8.GetString(nestedHeader.Span));
            Add(chord, "@expires_at", ExpiresAt);
            await chord.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        return true;
    }

    private static byte[] FlatTuples(IReadOnlyList<string> ids)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (string id in ids)
            {
                w.WriteStartArray();
                w.WriteStartArray();
                w.WriteStringValue(id);
                w.WriteNullValue();
                w.WriteEndArray();
                w.WriteNullValue();
                w.WriteEndArray();
            }

            w.WriteEndArray();
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// Counts a finished header member in one transaction that holds the chord's row: exactly one caller sees the count
    /// reach the chord's size, deletes the row and reads every member's result (each stored before its part is counted).
    /// </summary>
    public override async ValueTask<ChordJoin?> AddChordPartAsync(ChordPartReturn part, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(part);
        (string Members, string? Nested)? ready = await _outage.RunAsync(OpenAsync, (connection, ct) => CountPartAsync(connection, part, ct), DatabaseOutage.WritePatience, idempotent: false, ct).ConfigureAwait(false);
        if (ready is not { } join)
        {
            return null;
        }

        (string members, string? nested) = join;

        string[] ids = JsonSerializer.Deserialize<string[]>(members) ?? [];
        var parts = new List<ChordPart>(ids.Length);
        foreach (string id in ids)
        {
            TaskResultMeta? meta = await ReadTaskAsync(id, ct).ConfigureAwait(false);
            parts.Add(meta is null ? new ChordPart(id, TaskStates.Pending, default) : new ChordPart(id, meta.Status, meta.ResultElement));
        }

        return new ChordJoin(parts, nested is null ? null : Encoding.UTF8.GetBytes(nested));
    }

    /// <summary>Counts the part; when it is the last, deletes the join row and returns its members and nested header.</summary>
    private async Task<(string Members, string? Nested)?> CountPartAsync(DbConnection connection, ChordPartReturn part, CancellationToken ct)
    {
        DbTransaction tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable txScope = tx.ConfigureAwait(false);
        (long done, long size, string members, string? nested) = await IncrementAsync(connection, tx, part.GroupId, ct).ConfigureAwait(false);
        if (size == 0)
        {
            // No join row: a Celery client sent this chord. On this backend Celery joins by polling (its client sends
            // celery.chord_unlock, which the worker runs) and a member's return does nothing, as here.
            await tx.RollbackAsync(ct).ConfigureAwait(false);
            return null;
        }

        if (done != (part.ChordSize ?? size))
        {
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return null;
        }

        DbCommand delete = Command(connection, tx, $"DELETE FROM {_dialect.Chord} WHERE group_id = @group_id");
        await using (delete.ConfigureAwait(false))
        {
            Add(delete, "@group_id", part.GroupId);
            await delete.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        return (members, nested);
    }

    /// <summary>
    /// Deletes expired results, groups and chord rows, as Celery's <c>DatabaseBackend.cleanup()</c> (run by the
    /// <c>celery.backend_cleanup</c> periodic task) does: rows whose <c>date_done</c> is older than the expiry.
    /// </summary>
    public async Task CleanupAsync(CancellationToken ct = default)
    {
        if (Options.ResultExpires is not { } expires)
        {
            return;
        }

        DateTimeOffset now = Options.TimeProvider.GetUtcNow();
        string[] statements =
        [
            $"DELETE FROM {_dialect.Task} WHERE date_done < @before",
            $"DELETE FROM {_dialect.Group} WHERE date_done < @before",
            $"DELETE FROM {_dialect.TaskExtra} WHERE expires_at < @now",
            $"DELETE FROM {_dialect.Chord} WHERE expires_at < @now",
        ];
        await _outage.RunAsync(
            OpenAsync,
            (connection, ct) => RunEachAsync(connection, statements, [("@before", _dialect.Date(now - expires)), ("@now", now.ToUnixTimeMilliseconds())], ct),
            DatabaseOutage.ReadPatience,
            idempotent: true,
            ct).ConfigureAwait(false);
    }

    private async ValueTask CleanupNowAndThenAsync(CancellationToken ct)
    {
        long now = Now;
        long last = Interlocked.Read(ref _lastCleanup);
        if (now - last < (long)s_cleanupEvery.TotalMilliseconds || Interlocked.CompareExchange(ref _lastCleanup, now, last) != last)
        {
            return;
        }

        try
        {
            await CleanupAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DbException or TimeoutException or BrokerUnreachableException)
        {
            Log.CleanupFailed(_logger, e);
        }
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        PostgresNotifications? notifications;
        lock (_listenGate)
        {
            notifications = _notifications;
        }

        if (notifications is not null)
        {
            await notifications.DisposeAsync().ConfigureAwait(false);
        }

        await _dialect.DisposeAsync().ConfigureAwait(false);
        _createGate.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
