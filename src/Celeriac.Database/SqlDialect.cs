using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace Celeriac.Database;

/// <summary>Celery's table names (<c>database_table_names</c>, <c>database_table_schemas</c>) and Celeriac's two additive tables beside them.</summary>
internal sealed record TableNames(string Task, string Group, string? TaskSchema, string? GroupSchema)
{
    /// <summary>Celeriac's own columns per task (group, parent, children, expiry): Celery's table has none for them.</summary>
    public string TaskExtra => Task + "_celeriac";

    /// <summary>Celeriac's chord join state: Celery's database backend has no chord counter (it polls with chord_unlock).</summary>
    public string Chord => Group + "_celeriac_chord";
}

/// <summary>What differs between engines: connections, DDL, upserts. Everything else is the backend's, in one place.</summary>
internal abstract class SqlDialect : IAsyncDisposable
{
    protected SqlDialect(TableNames names) => Names = names;

    public TableNames Names { get; }

    public abstract ValueTask<DbConnection> OpenAsync(CancellationToken ct);

    protected abstract string Quote(string identifier);

    /// <summary>A table (or sequence) name, schema-qualified and quoted.</summary>
    public string Name(string name, string? schema) => schema is null ? Quote(name) : Quote(schema) + "." + Quote(name);

    public string Task => Name(Names.Task, Names.TaskSchema);

    public string Group => Name(Names.Group, Names.GroupSchema);

    public string TaskExtra => Name(Names.TaskExtra, Names.TaskSchema);

    public string Chord => Name(Names.Chord, Names.GroupSchema);

    /// <summary>Creates what is missing (as Celery's <c>prepare_models</c>), on an open connection in a transaction.</summary>
    public abstract IEnumerable<string> CreateStatements();

    /// <summary>Inserts or updates Celery's task row; <paramref name="extended"/> adds the result_extended columns.</summary>
    public abstract string UpsertTask(bool extended);

    public abstract string UpsertTaskExtra();

    public abstract string UpsertGroup();

    public abstract string UpsertChord();

    /// <summary>Adds one to a chord's counter (creating it at one).</summary>
    public abstract string IncrementChord();

    /// <summary>Locks the row a SELECT reads until the transaction ends, where the engine locks rows.</summary>
    public virtual string ForUpdate => " FOR UPDATE";

    /// <summary>The value of a <c>date_done</c> parameter: a naive UTC time, as SQLAlchemy's DateTime stores it.</summary>
    public virtual object Date(DateTimeOffset when) => DateTime.SpecifyKind(when.UtcDateTime, DateTimeKind.Unspecified);

    public virtual DateTimeOffset ReadDate(DbDataReader reader, int ordinal) =>
        new(DateTime.SpecifyKind(reader.GetDateTime(ordinal), DateTimeKind.Utc));

    /// <summary>Runs after the tables exist (PostgreSQL adds its notify trigger); failures are the caller's to log.</summary>
    public virtual IEnumerable<string> AfterCreateStatements() => [];

    protected const string ExtraColumns = "task_id VARCHAR(155) NOT NULL PRIMARY KEY, group_id VARCHAR(155), parent_id VARCHAR(155), children TEXT, expires_at BIGINT";

    protected const string ChordColumns = "group_id VARCHAR(155) NOT NULL PRIMARY KEY, size INTEGER NOT NULL, done INTEGER NOT NULL, members TEXT NOT NULL, nested TEXT, expires_at BIGINT";

    protected static string TaskColumns(bool extended) => extended
        ? "task_id, status, result, date_done, traceback, name, args, kwargs, worker, retries, queue"
        : "task_id, status, result, date_done, traceback";

    protected static string TaskValues(bool extended) => extended
        ? "@task_id, @status, @result, @date_done, @traceback, @name, @args, @kwargs, @worker, @retries, @queue"
        : "@task_id, @status, @result, @date_done, @traceback";

    protected static IEnumerable<string> UpdatedTaskColumns(bool extended) => extended
        ? ["status", "result", "date_done", "traceback", "name", "args", "kwargs", "worker", "retries", "queue"]
        : ["status", "result", "date_done", "traceback"];

    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>PostgreSQL: SQLAlchemy's tables with their sequences, and a trigger that NOTIFYs each task write.</summary>
internal sealed class PostgresDialect(TableNames names, string connectionString) : SqlDialect(names)
{
    private readonly NpgsqlDataSource _source = NpgsqlDataSource.Create(connectionString);

    public string ConnectionString { get; } = connectionString;

    /// <summary>The NOTIFY channel of the task table (an identifier of at most 63 bytes).</summary>
    public string Channel { get; } = ChannelOf(names);

    private static string ChannelOf(TableNames names)
    {
        string channel = "celeriac_" + (names.TaskSchema is null ? "" : names.TaskSchema + "_") + names.Task;
        return channel.Length > 63 ? channel[..63] : channel;
    }

    public override async ValueTask<DbConnection> OpenAsync(CancellationToken ct) => await _source.OpenConnectionAsync(ct).ConfigureAwait(false);

    protected override string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private string TaskSequence => Name("task_id_sequence", Names.TaskSchema);

    private string GroupSequence => Name("taskset_id_sequence", Names.GroupSchema);

    private string Function => Name(Names.Task + "_celeriac_notify", Names.TaskSchema);

    public override IEnumerable<string> CreateStatements() =>
    [
        // Two processes creating at once would collide on the catalog; one waits for the other.
        "SELECT pg_advisory_xact_lock(7236184522501)",
        $"CREATE SEQUENCE IF NOT EXISTS {TaskSequence}",
        $"CREATE SEQUENCE IF NOT EXISTS {GroupSequence}",
        $"CREATE TABLE IF NOT EXISTS {Task} (id INTEGER NOT NULL, task_id VARCHAR(155), status VARCHAR(50), result BYTEA, date_done TIMESTAMP WITHOUT TIME ZONE, traceback TEXT, name VARCHAR(155), args BYTEA, kwargs BYTEA, worker VARCHAR(155), retries INTEGER, queue VARCHAR(155), PRIMARY KEY (id), UNIQUE (task_id))",
        $"CREATE TABLE IF NOT EXISTS {Group} (id INTEGER NOT NULL, taskset_id VARCHAR(155), result BYTEA, date_done TIMESTAMP WITHOUT TIME ZONE, PRIMARY KEY (id), UNIQUE (taskset_id))",
        $"CREATE TABLE IF NOT EXISTS {TaskExtra} ({ExtraColumns})",
        $"CREATE TABLE IF NOT EXISTS {Chord} ({ChordColumns})",
    ];

    public override IEnumerable<string> AfterCreateStatements() =>
    [
        "SELECT pg_advisory_xact_lock(7236184522501)",
        $"CREATE OR REPLACE FUNCTION {Function}() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM pg_notify('{Channel}', NEW.task_id); RETURN NEW; END$$",
        $"CREATE OR REPLACE TRIGGER {Quote(Names.Task + "_celeriac_notify")} AFTER INSERT OR UPDATE ON {Task} FOR EACH ROW EXECUTE FUNCTION {Function}()",
    ];

    public override string UpsertTask(bool extended) =>
        $"INSERT INTO {Task} (id, {TaskColumns(extended)}) VALUES (nextval('{TaskSequence}'), {TaskValues(extended)}) " +
        $"ON CONFLICT (task_id) DO UPDATE SET {string.Join(", ", UpdatedTaskColumns(extended).Select(c => c + " = EXCLUDED." + c))}";

    public override string UpsertTaskExtra() =>
        $"INSERT INTO {TaskExtra} (task_id, group_id, parent_id, children, expires_at) VALUES (@task_id, @group_id, @parent_id, @children, @expires_at) " +
        "ON CONFLICT (task_id) DO UPDATE SET group_id = EXCLUDED.group_id, parent_id = EXCLUDED.parent_id, children = EXCLUDED.children, expires_at = EXCLUDED.expires_at";

    public override string UpsertGroup() =>
        $"INSERT INTO {Group} (id, taskset_id, result, date_done) VALUES (nextval('{GroupSequence}'), @group_id, @result, @date_done) " +
        "ON CONFLICT (taskset_id) DO UPDATE SET result = EXCLUDED.result, date_done = EXCLUDED.date_done";

    public override string UpsertChord() =>
        $"INSERT INTO {Chord} (group_id, size, done, members, nested, expires_at) VALUES (@group_id, @size, 0, @members, @nested, @expires_at) " +
        "ON CONFLICT (group_id) DO UPDATE SET size = EXCLUDED.size, done = 0, members = EXCLUDED.members, nested = EXCLUDED.nested, expires_at = EXCLUDED.expires_at";

    public override string IncrementChord() =>
        $"INSERT INTO {Chord} AS c (group_id, size, done, members, expires_at) VALUES (@group_id, 0, 1, '[]', @expires_at) " +
        "ON CONFLICT (group_id) DO UPDATE SET done = c.done + 1";

    public override async ValueTask DisposeAsync()
    {
        await _source.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>
/// MySQL and MariaDB: on MariaDB (10.3+) SQLAlchemy makes sequences, as on PostgreSQL; on MySQL, AUTO_INCREMENT. Tables
/// Celeriac creates use LONGBLOB/LONGTEXT and DATETIME(6) where SQLAlchemy would make BLOB (64 KiB), TEXT and DATETIME
/// (whole seconds): Python reads both the same.
/// </summary>
internal sealed class MySqlDialect(TableNames names, string connectionString) : SqlDialect(names)
{
    private int _sequences = -1;

    public override async ValueTask<DbConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new MySqlConnection(connectionString);
        await connection.OpenAsync(ct).ConfigureAwait(false);
        if (_sequences < 0)
        {
            _sequences = connection.ServerVersion.Contains("MariaDB", StringComparison.OrdinalIgnoreCase) ? 1 : 0;
        }

        return connection;
    }

    private bool Sequences => _sequences == 1;

    protected override string Quote(string identifier) => "`" + identifier.Replace("`", "``", StringComparison.Ordinal) + "`";

    private string TaskSequence => Name("task_id_sequence", Names.TaskSchema);

    private string GroupSequence => Name("taskset_id_sequence", Names.GroupSchema);

    public override IEnumerable<string> CreateStatements()
    {
        string id = Sequences ? "id INTEGER NOT NULL" : "id INTEGER NOT NULL AUTO_INCREMENT";
        List<string> all = [];
        if (Sequences)
        {
            all.Add($"CREATE SEQUENCE IF NOT EXISTS {TaskSequence}");
            all.Add($"CREATE SEQUENCE IF NOT EXISTS {GroupSequence}");
        }

        all.Add($"CREATE TABLE IF NOT EXISTS {Task} ({id}, task_id VARCHAR(155), status VARCHAR(50), result LONGBLOB, date_done DATETIME(6), traceback LONGTEXT, name VARCHAR(155), args LONGBLOB, kwargs LONGBLOB, worker VARCHAR(155), retries INTEGER, queue VARCHAR(155), PRIMARY KEY (id), UNIQUE (task_id)) DEFAULT CHARSET=utf8mb4");
        all.Add($"CREATE TABLE IF NOT EXISTS {Group} ({id}, taskset_id VARCHAR(155), result LONGBLOB, date_done DATETIME(6), PRIMARY KEY (id), UNIQUE (taskset_id)) DEFAULT CHARSET=utf8mb4");
        all.Add($"CREATE TABLE IF NOT EXISTS {TaskExtra} ({ExtraColumns.Replace("children TEXT", "children LONGTEXT", StringComparison.Ordinal)}) DEFAULT CHARSET=utf8mb4");
        all.Add($"CREATE TABLE IF NOT EXISTS {Chord} ({ChordColumns.Replace("members TEXT", "members LONGTEXT", StringComparison.Ordinal).Replace("nested TEXT", "nested LONGTEXT", StringComparison.Ordinal)}) DEFAULT CHARSET=utf8mb4");
        return all;
    }

    public override string UpsertTask(bool extended) =>
        (Sequences
            ? $"INSERT INTO {Task} (id, {TaskColumns(extended)}) VALUES (NEXT VALUE FOR {TaskSequence}, {TaskValues(extended)}) "
            : $"INSERT INTO {Task} ({TaskColumns(extended)}) VALUES ({TaskValues(extended)}) ") +
        $"ON DUPLICATE KEY UPDATE {string.Join(", ", UpdatedTaskColumns(extended).Select(c => $"{c} = VALUES({c})"))}";

    public override string UpsertTaskExtra() =>
        $"INSERT INTO {TaskExtra} (task_id, group_id, parent_id, children, expires_at) VALUES (@task_id, @group_id, @parent_id, @children, @expires_at) " +
        "ON DUPLICATE KEY UPDATE group_id = VALUES(group_id), parent_id = VALUES(parent_id), children = VALUES(children), expires_at = VALUES(expires_at)";

    public override string UpsertGroup() =>
        (Sequences
            ? $"INSERT INTO {Group} (id, taskset_id, result, date_done) VALUES (NEXT VALUE FOR {GroupSequence}, @group_id, @result, @date_done) "
            : $"INSERT INTO {Group} (taskset_id, result, date_done) VALUES (@group_id, @result, @date_done) ") +
        "ON DUPLICATE KEY UPDATE result = VALUES(result), date_done = VALUES(date_done)";

    public override string UpsertChord() =>
        $"INSERT INTO {Chord} (group_id, size, done, members, nested, expires_at) VALUES (@group_id, @size, 0, @members, @nested, @expires_at) " +
        "ON DUPLICATE KEY UPDATE size = VALUES(size), done = 0, members = VALUES(members), nested = VALUES(nested), expires_at = VALUES(expires_at)";

    public override string IncrementChord() =>
        $"INSERT INTO {Chord} (group_id, size, done, members, expires_at) VALUES (@group_id, 0, 1, '[]', @expires_at) ON DUPLICATE KEY UPDATE done = done + 1";
}

/// <summary>SQLite: SQLAlchemy's tables (AUTOINCREMENT ids, dates as text); a write takes the file's lock at BEGIN.</summary>
internal sealed class SqliteDialect(TableNames names, string connectionString) : SqlDialect(names)
{
    private const string DateFormat = "yyyy-MM-dd HH:mm:ss.ffffff";

    public override async ValueTask<DbConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync(ct).ConfigureAwait(false);
        using SqliteCommand pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=30000";
        await pragma.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        return connection;
    }

    protected override string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    public override string ForUpdate => "";

    public override object Date(DateTimeOffset when) => when.UtcDateTime.ToString(DateFormat, CultureInfo.InvariantCulture);

    public override DateTimeOffset ReadDate(DbDataReader reader, int ordinal)
    {
        string text = reader.GetString(ordinal);
        return DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
    }

    public override IEnumerable<string> CreateStatements() =>
    [
        $"CREATE TABLE IF NOT EXISTS {Task} (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, task_id VARCHAR(155), status VARCHAR(50), result BLOB, date_done DATETIME, traceback TEXT, name VARCHAR(155), args BLOB, kwargs BLOB, worker VARCHAR(155), retries INTEGER, queue VARCHAR(155), UNIQUE (task_id))",
        $"CREATE TABLE IF NOT EXISTS {Group} (id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, taskset_id VARCHAR(155), result BLOB, date_done DATETIME, UNIQUE (taskset_id))",
        $"CREATE TABLE IF NOT EXISTS {TaskExtra} ({ExtraColumns})",
        $"CREATE TABLE IF NOT EXISTS {Chord} ({ChordColumns})",
    ];

    public override string UpsertTask(bool extended) =>
        $"INSERT INTO {Task} ({TaskColumns(extended)}) VALUES ({TaskValues(extended)}) " +
        $"ON CONFLICT (task_id) DO UPDATE SET {string.Join(", ", UpdatedTaskColumns(extended).Select(c => c + " = excluded." + c))}";

    public override string UpsertTaskExtra() =>
        $"INSERT INTO {TaskExtra} (task_id, group_id, parent_id, children, expires_at) VALUES (@task_id, @group_id, @parent_id, @children, @expires_at) " +
        "ON CONFLICT (task_id) DO UPDATE SET group_id = excluded.group_id, parent_id = excluded.parent_id, children = excluded.children, expires_at = excluded.expires_at";

    public override string UpsertGroup() =>
        $"INSERT INTO {Group} (taskset_id, result, date_done) VALUES (@group_id, @result, @date_done) " +
        "ON CONFLICT (taskset_id) DO UPDATE SET result = excluded.result, date_done = excluded.date_done";

    public override string UpsertChord() =>
        $"INSERT INTO {Chord} (group_id, size, done, members, nested, expires_at) VALUES (@group_id, @size, 0, @members, @nested, @expires_at) " +
        "ON CONFLICT (group_id) DO UPDATE SET size = excluded.size, done = 0, members = excluded.members, nested = excluded.nested, expires_at = excluded.expires_at";

    public override string IncrementChord() =>
        $"INSERT INTO {Chord} (group_id, size, done, members, expires_at) VALUES (@group_id, 0, 1, '[]', @expires_at) ON CONFLICT (group_id) DO UPDATE SET done = done + 1";
}
