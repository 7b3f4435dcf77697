using Celeriac.Results;
using Microsoft.Data.Sqlite;

namespace Celeriac.Sqlite;

/// <summary>
/// Results in a SQLite file (<c>sqlite:///celeriac.db</c>, by default the broker's file), in a
/// <c>kv</c> table under Celery's key names and documents. Writes of the moment share one commit; a
/// store completes when committed. Expired rows read as missing and are deleted now and then.
/// A waiter in the process that wrote is woken at once; one in another process within milliseconds of the
/// commit (SQLite's data_version tells the store that another connection wrote).
/// </summary>
public sealed class SqliteResultBackend : KeyValueResultBackend
{
    private const long SweepEveryMs = 60_000;
    private readonly SqliteStore _store;
    private int _disposed;
    private int _watching;

    /// <summary>Opens (creating if needed) the file named by the URL.</summary>
    public SqliteResultBackend(ResultBackendOptions options)
        : this(options, SqliteStore.Acquire(UrlText.FilePath(Checked(options).Url), options.LoggerFactory))
    {
    }

    /// <summary>A backend on a given store (tests give it a private one to play another process).</summary>
    internal SqliteResultBackend(ResultBackendOptions options, SqliteStore store) : base(options)
    {
        _store = store;
    }

    private static ResultBackendOptions Checked(ResultBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options;
    }

    private long Now => Options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    /// <inheritdoc />
    protected override ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        long now = Now;
        return ValueTask.FromResult(_store.Read(connection =>
        {
            using SqliteCommand get = connection.CreateCommand();
            get.CommandText = Schema.KvGet;
            get.Parameters.AddWithValue("$key", key);
            get.Parameters.AddWithValue("$now", now);
            using SqliteDataReader reader = get.ExecuteReader();
            return reader.Read() && !reader.IsDBNull(0) ? reader.GetFieldValue<byte[]>(0) : null;
        }));
    }

    /// <inheritdoc />
    protected override async ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        long? expires = expiry is { } e ? Now + (long)e.TotalMilliseconds : null;
        await _store.RunAsync(new WriteOp<bool>(
            c =>
            {
                SqliteCommand set = c.Command(Schema.KvSet);
                set.Parameters["$key"].Value = key;
                set.Parameters["$value"].Value = value;
                set.Parameters["$expires"].Value = expires is { } x ? x : DBNull.Value;
                set.ExecuteNonQuery();
                Sweep(c);
                return true;
            },
            _ => Wake(key))).ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override async ValueTask DeleteValueAsync(string key, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        await _store.RunAsync(new WriteOp<bool>(c =>
        {
            SqliteCommand delete = c.Command(Schema.KvDelete);
            delete.Parameters["$key"].Value = key;
            delete.ExecuteNonQuery();
            return true;
        })).ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override async ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        long now = Now;
        long? expires = expiry is { } e ? now + (long)e.TotalMilliseconds : null;
        var op = new WriteOp<long>(c =>
        {
            SqliteCommand increment = c.Command(Schema.KvIncrement);
            increment.Parameters["$key"].Value = key;
            increment.Parameters["$now"].Value = now;
            increment.Parameters["$expires"].Value = expires is { } x ? x : DBNull.Value;
            return (long)increment.ExecuteScalar()!;
        });
        _store.Enqueue(op);
        return await op.Task.ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override Task? WhenChangedAsync(string key, CancellationToken ct)
    {
        // Writes of this process pulse the key at once; other processes' commits are found by the watcher.
        if (Interlocked.CompareExchange(ref _watching, 1, 0) == 0)
        {
            _ = Task.Run(WatchOtherProcessesAsync, CancellationToken.None);
        }

        return base.WhenChangedAsync(key, ct);
    }

    /// <summary>
    /// While anyone waits, wakes on every commit of another process (the store's data_version watch) and
    /// reads all waited keys in one query, so that a thousand waiters cost one read, not a thousand.
    /// </summary>
    private async Task WatchOtherProcessesAsync()
    {
        while (true)
        {
            while (Volatile.Read(ref _disposed) == 0 && !_store.KeyWaiters.IsEmpty)
            {
                _store.WatchExternal();
                Task external = _store.External.WaitAsync();
                await Task.WhenAny(external, Task.Delay(500)).ConfigureAwait(false);
                if (external.IsCompleted)
                {
                    WakeStoredKeys();
                }
            }

            Volatile.Write(ref _watching, 0);

            // A waiter that arrived while the loop was ending must not be left without a watcher.
            if (_store.KeyWaiters.IsEmpty || Volatile.Read(ref _disposed) != 0 || Interlocked.CompareExchange(ref _watching, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private void WakeStoredKeys()
    {
        foreach (string[] chunk in _store.KeyWaiters.Keys.Chunk(500))
        {
            List<string> found = _store.Read(connection =>
            {
                using SqliteCommand query = connection.CreateCommand();
                var names = new string[chunk.Length];
                for (int i = 0; i < chunk.Length; i++)
                {
                    names[i] = "$k" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    query.Parameters.AddWithValue(names[i], chunk[i]);
                }

                query.CommandText = "SELECT key FROM kv WHERE key IN (" + string.Join(',', names) + ")";
                using SqliteDataReader reader = query.ExecuteReader();
                var keys = new List<string>();
                while (reader.Read())
                {
                    keys.Add(reader.GetString(0));
                }

                return keys;
            });
            foreach (string key in found)
            {
                Wake(key);
            }
        }
    }

    /// <summary>The store's waiters, shared by every backend on the file in this process.</summary>
    protected override KeyWaiterTable Waiters => _store.KeyWaiters;

    private void Sweep(WriteContext c)
    {
        long now = Now;
        if (now - c.Store.LastKvSweep < SweepEveryMs)
        {
            return;
        }

        c.Store.LastKvSweep = now;
        SqliteCommand sweep = c.Command(Schema.SweepKv);
        sweep.Parameters["$now"].Value = now;
        sweep.ExecuteNonQuery();
    }

    /// <summary>Commits pending writes, then closes (the file closes with the last user in this process).</summary>
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _store.ReleaseAsync().ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }
}
