using System.Text.Json;
using Celeriac.Beat;
using Microsoft.Data.Sqlite;

namespace Celeriac.Sqlite;

/// <summary>
/// Beat's entries, their last runs and the one-sender lease in a SQLite file (the broker's own file, or any other):
/// tables <c>celeriac_beat_entries</c> and <c>celeriac_beat_lease</c>, created on first use. Every method is one
/// transaction, and every write one <c>BEGIN IMMEDIATE</c> transaction, so that two processes on the file never both
/// record a run and a process killed at any moment leaves the file readable (WAL rolls an unfinished write back).
/// Times are stored as UTC ticks, so that what <see cref="LoadAsync"/> returns compares equal in
/// <see cref="TryRecordRunAsync"/>. Leases expire by the injected clock of each process.
/// </summary>
public sealed class SqliteBeatStore : IBeatStore
{
    // Few: each attempt already waited DefaultTimeout for the lock; beat fails this tick and tries again on the next.
    private const int MaxBusyRetries = 2;

    private const string CreateSchema = """
        CREATE TABLE IF NOT EXISTS celeriac_beat_entries (
            name TEXT PRIMARY KEY,
            definition TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            last_run_at INTEGER NULL,
            total_run_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE IF NOT EXISTS celeriac_beat_lease (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            holder TEXT NOT NULL,
            expires_at INTEGER NOT NULL
        );
        """;

    private const string SelectAll = "SELECT name, definition, enabled, last_run_at, total_run_count FROM celeriac_beat_entries";

    // An existing entry keeps its state: only its definition changes (IBeatStore.SaveAsync).
    private const string Upsert = """
        INSERT INTO celeriac_beat_entries (name, definition, enabled, last_run_at, total_run_count)
        VALUES ($name, $definition, $enabled, $last, $count)
        ON CONFLICT (name) DO UPDATE SET definition = excluded.definition
        """;

    private const string Delete = "DELETE FROM celeriac_beat_entries WHERE name = $name";

    private const string Enable = "UPDATE celeriac_beat_entries SET enabled = $enabled WHERE name = $name";

    // Taken when free, expired, or already ours (a renewal); the DO UPDATE's WHERE leaves another's live lease alone,
    // and then no row changes.
    private const string HoldLease = """
        INSERT INTO celeriac_beat_lease (id, holder, expires_at) VALUES (1, $holder, $until)
        ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE celeriac_beat_lease.holder = excluded.holder OR celeriac_beat_lease.expires_at <= $now
        """;

    private const string DropLease = "DELETE FROM celeriac_beat_lease WHERE id = 1 AND holder = $holder";

    // One statement checks the lease and the last run and records the run: the compare-and-set that decides a send.
    // IS compares NULL with NULL as equal (an entry that never ran).
    private const string RecordRun = """
        UPDATE celeriac_beat_entries SET last_run_at = $run, total_run_count = total_run_count + 1
        WHERE name = $name AND last_run_at IS $expected
          AND EXISTS (SELECT 1 FROM celeriac_beat_lease WHERE id = 1 AND holder = $holder AND expires_at > $now)
        """;

    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private SqliteConnection? _connection;
    private bool _disposed;

    /// <summary>A store in the file at <paramref name="path"/> (created if missing).</summary>
    /// <param name="path">The SQLite file (<see cref="UrlText.FilePath"/> reads it from a <c>sqlite:///</c> URL).</param>
    /// <param name="time">The clock leases expire by (the app's <c>TimeProvider</c>).</param>
    public SqliteBeatStore(string path, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
        _time = time ?? TimeProvider.System;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,

            // One connection for the store's life, closed on dispose so that the file is let go.
            Pooling = false,
            DefaultTimeout = 10,
        }.ToString();
    }

    /// <summary>The full path of the file.</summary>
    public string Path { get; }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<BeatEntry>> LoadAsync(CancellationToken ct = default)
    {
        var rows = new List<(string Name, string Definition, bool Enabled, long? LastRun, long Count)>();
        await RunAsync(
            connection =>
            {
                // One statement reads one snapshot; in WAL it never waits for a writer.
                using SqliteCommand select = Command(connection, null, SelectAll);
                using SqliteDataReader reader = select.ExecuteReader();
                while (reader.Read())
                {
                    rows.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2) != 0, reader.IsDBNull(3) ? null : reader.GetInt64(3), reader.GetInt64(4)));
                }

                return 0;
            },
            ct).ConfigureAwait(false);

        var entries = new List<BeatEntry>(rows.Count);
        foreach ((string name, string definition, bool enabled, long? lastRun, long count) in rows.OrderBy(r => r.Name, StringComparer.Ordinal))
        {
            BeatEntry entry;
            try
            {
                using var document = JsonDocument.Parse(definition);
                entry = BeatEntry.FromJson(name, document.RootElement);
            }
            catch (JsonException ex)
            {
                throw new FormatException($"Beat entry '{name}' in {Path}: its stored definition is not JSON ({ex.Message}).", ex);
            }

            entries.Add(entry with { Enabled = enabled, LastRunAt = FromTicks(lastRun), TotalRunCount = count });
        }

        return entries;
    }

    /// <inheritdoc />
    public async ValueTask SaveAsync(BeatEntry entry, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        string definition = entry.DefinitionJson();
        await RunAsync(
            (connection, tx) =>
            {
                using SqliteCommand upsert = Command(connection, tx, Upsert);
                upsert.Parameters.AddWithValue("$name", entry.Name);
                upsert.Parameters.AddWithValue("$definition", definition);
                upsert.Parameters.AddWithValue("$enabled", entry.Enabled ? 1 : 0);
                upsert.Parameters.AddWithValue("$last", Ticks(entry.LastRunAt));
                upsert.Parameters.AddWithValue("$count", entry.TotalRunCount);
                return upsert.ExecuteNonQuery();
            },
            ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> RemoveAsync(string name, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        return await RunAsync(
            (connection, tx) =>
            {
                using SqliteCommand delete = Command(connection, tx, Delete);
                delete.Parameters.AddWithValue("$name", name);
                return delete.ExecuteNonQuery();
            },
            ct).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public async ValueTask<bool> SetEnabledAsync(string name, bool enabled, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        return await RunAsync(
            (connection, tx) =>
            {
                using SqliteCommand update = Command(connection, tx, Enable);
                update.Parameters.AddWithValue("$name", name);
                update.Parameters.AddWithValue("$enabled", enabled ? 1 : 0);
                return update.ExecuteNonQuery();
            },
            ct).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public async ValueTask<bool> TryHoldLeaseAsync(string holder, TimeSpan duration, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(duration, TimeSpan.Zero);
        return await RunAsync(
            (connection, tx) =>
            {
                // The clock is read inside the write lock, so that a slow wait for the lock cannot shorten the lease.
                long now = _time.GetUtcNow().UtcTicks;
                using SqliteCommand hold = Command(connection, tx, HoldLease);
                hold.Parameters.AddWithValue("$holder", holder);
                hold.Parameters.AddWithValue("$until", now + duration.Ticks);
                hold.Parameters.AddWithValue("$now", now);
                return hold.ExecuteNonQuery();
            },
            ct).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public async ValueTask ReleaseLeaseAsync(string holder, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(holder);
        await RunAsync(
            (connection, tx) =>
            {
                using SqliteCommand drop = Command(connection, tx, DropLease);
                drop.Parameters.AddWithValue("$holder", holder);
                return drop.ExecuteNonQuery();
            },
            ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> TryRecordRunAsync(string holder, string name, DateTimeOffset? expectedLastRun, DateTimeOffset runAt, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(holder);
        ArgumentNullException.ThrowIfNull(name);
        return await RunAsync(
            (connection, tx) =>
            {
                // Read under the write lock: a lease that expired while this process waited for the lock is expired.
                long now = _time.GetUtcNow().UtcTicks;
                using SqliteCommand record = Command(connection, tx, RecordRun);
                record.Parameters.AddWithValue("$name", name);
                record.Parameters.AddWithValue("$holder", holder);
                record.Parameters.AddWithValue("$expected", Ticks(expectedLastRun));
                record.Parameters.AddWithValue("$run", runAt.UtcTicks);
                record.Parameters.AddWithValue("$now", now);
                return record.ExecuteNonQuery();
            },
            ct).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _disposed = true;
            if (_connection is not null)
            {
                await _connection.DisposeAsync().ConfigureAwait(false);
                _connection = null;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private static object Ticks(DateTimeOffset? at) => at is { } t ? t.UtcTicks : DBNull.Value;

    private static DateTimeOffset? FromTicks(long? ticks) => ticks is { } t ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? tx, string sql)
    {
        SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        return command;
    }

    /// <summary>Runs a write in one <c>BEGIN IMMEDIATE</c> transaction; returns what <paramref name="write"/> returns (rows changed).</summary>
    private Task<int> RunAsync(Func<SqliteConnection, SqliteTransaction, int> write, CancellationToken ct) =>
        RunAsync(
            connection =>
            {
                // IMMEDIATE takes the write lock at BEGIN: a deferred transaction that read first could not upgrade
                // in WAL once another process committed (SQLITE_BUSY_SNAPSHOT, no busy wait).
                using SqliteTransaction tx = connection.BeginTransaction(deferred: false);
                int changed = write(connection, tx);
                tx.Commit();
                return changed;
            },
            ct);

    private async Task<int> RunAsync(Func<SqliteConnection, int> work, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    // On a pool thread: SQLite blocks while it waits for another process's write lock, and that wait
                    // must not block the caller (beat's loop, or a thread that holds the lock itself).
                    return await Task.Run(
                        () =>
                        {
                            SqliteConnection connection = _connection ??= Open();
                            return work(connection);
                        },
                        ct).ConfigureAwait(false);
                }
                catch (SqliteException ex) when (SqliteStore.IsBusy(ex) && attempt < MaxBusyRetries && !ct.IsCancellationRequested)
                {
                    // The busy timeout already waited; another process held the file longer (a long checkpoint).
                    // Nothing was committed, so the whole transaction is safe to run again.
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(10 << attempt, 500)), ct).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();
            Execute(connection, "PRAGMA busy_timeout = 5000;");

            // Only what is missing is changed, so that opening a file whose writer is busy (another beat, the broker)
            // waits for no lock: switching to WAL and creating tables both need the write lock.
            if (!string.Equals(Scalar(connection, "PRAGMA journal_mode;"), "wal", StringComparison.OrdinalIgnoreCase))
            {
                // WAL: readers (LoadAsync, another beat) never wait for the writer, and a process killed in the
                // middle of a write leaves only uncommitted frames that the next opener ignores.
                Execute(connection, "PRAGMA journal_mode = WAL;");
            }

            Execute(connection, "PRAGMA synchronous = NORMAL;");
            if (Scalar(connection, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('celeriac_beat_entries', 'celeriac_beat_lease')") != "2")
            {
                using SqliteTransaction tx = connection.BeginTransaction(deferred: false);
                using (SqliteCommand create = Command(connection, tx, CreateSchema))
                {
                    create.ExecuteNonQuery();
                }

                tx.Commit();
            }

            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static string? Scalar(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = Command(connection, null, sql);
        return Convert.ToString(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = Command(connection, null, sql);
        command.ExecuteNonQuery();
    }
}
