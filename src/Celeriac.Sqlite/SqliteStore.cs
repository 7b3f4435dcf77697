using System.Collections.Concurrent;
using Celeriac.Transport;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Celeriac.Sqlite;

/// <summary>
/// One SQLite file as seen by this process: a single writer connection on its own thread that commits
/// every queued write of the moment in one transaction (group commit), and short-lived pooled readers.
/// Transports and result backends on the same file in one process share one store, so they never
/// contend for SQLite's write lock with each other; other processes are serialized by SQLite itself.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The writer thread owns the connection and disposes it when ReleaseAsync or Kill ends it.")]
internal sealed class SqliteStore
{
    private const int MaxOpsPerTransaction = 2048;
    private const int MaxBusyRetries = 10;
    private static readonly ConcurrentDictionary<string, SqliteStore> s_shared = new(StringComparer.Ordinal);
    private static readonly Lock s_sharedGate = new();

    private static readonly TimeSpan s_minPoll = TimeSpan.FromMilliseconds(1);

    // Checking for other processes' commits costs one PRAGMA data_version (a shared-memory read, no lock),
    // so polls can be frequent; the take itself runs only when something was committed. Each wake-up of an
    // idle process still costs a thread switch, so idle polling backs off to 100 ms.
    private static readonly TimeSpan s_maxPoll = TimeSpan.FromMilliseconds(100);

    // A parked take is retried at least this often even when data_version saw nothing (belt and braces).
    private const long ForcedRetryMs = 1000;
    private readonly ConcurrentQueue<WriteOp> _queue = new();
    private readonly List<WriteOp> _parked = [];
    // A plain event: SemaphoreSlim spins before it blocks, which an idle process pays on every poll.
    private readonly AutoResetEvent _wake = new(initialState: false);
    private readonly string _connectionString;
    private readonly ILogger _logger;
    private readonly bool _shared;
    private readonly Thread _writer;
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private SqliteConnection? _connection;
    private WriteContext? _context;
    private int _refCount;
    private volatile bool _closing;
    private volatile bool _killed;
    private long _commits;
    private long _watchUntil;
    private long _dataVersion = -1;
    private SqliteCommand? _dataVersionCommand;

    private SqliteStore(string path, ILoggerFactory loggerFactory, bool shared)
    {
        Path = path;
        _shared = shared;
        _logger = loggerFactory.CreateLogger("Celeriac.Sqlite");
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "Celeriac.Sqlite writer" };
    }

    /// <summary>The full path of the file.</summary>
    public string Path { get; }

    /// <summary>Pulsed after this process committed messages that may be consumed (publish, requeue).</summary>
    public AsyncPulse Messages { get; } = new();

    /// <summary>Pulsed after this process committed fanout messages.</summary>
    public AsyncPulse Fanout { get; } = new();

    /// <summary>Pulsed when another connection (another process) committed to the file, while anyone watches.</summary>
    public AsyncPulse External { get; } = new();

    /// <summary>
    /// Keeps the writer checking for other processes' commits for the next second (result waiters call it
    /// on each wait), so that <see cref="External"/> fires even in a process that consumes nothing.
    /// </summary>
    public void WatchExternal()
    {
        long until = Environment.TickCount64 + 1000;
        if (Interlocked.Exchange(ref _watchUntil, until) < Environment.TickCount64)
        {
            _wake.Set();
        }
    }

    /// <summary>Per-key pulses of the result backend, pulsed after a committed write of the key.</summary>
    public Celeriac.Results.KeyWaiterTable KeyWaiters { get; } = new();

    /// <summary>Transactions committed by this store's writer (group commit makes it far fewer than writes).</summary>
    internal long Commits => Interlocked.Read(ref _commits);

    /// <summary>When old fanout rows were last deleted (ms since the epoch; writer thread only).</summary>
    internal long LastFanoutSweep { get; set; }

    /// <summary>When expired results were last deleted (ms since the epoch; writer thread only).</summary>
    internal long LastKvSweep { get; set; }

    /// <summary>The store of <paramref name="path"/> shared in this process; release it with <see cref="ReleaseAsync"/>.</summary>
    public static SqliteStore Acquire(string path, ILoggerFactory loggerFactory)
    {
        lock (s_sharedGate)
        {
            if (!s_shared.TryGetValue(path, out SqliteStore? store))
            {
                store = new SqliteStore(path, loggerFactory, shared: true);
                store.Open();
                s_shared[path] = store;
            }

            store._refCount++;
            return store;
        }
    }

    /// <summary>A store of its own, as another process would have (tests use it to play a second process).</summary>
    public static SqliteStore OpenPrivate(string path, ILoggerFactory loggerFactory)
    {
        var store = new SqliteStore(path, loggerFactory, shared: false);
        store.Open();
        store._refCount = 1;
        return store;
    }

    /// <summary>Drops one reference; the last one flushes every queued write and closes the connection.</summary>
    public async ValueTask ReleaseAsync()
    {
        bool last;
        if (_shared)
        {
            lock (s_sharedGate)
            {
                last = --_refCount == 0;
                if (last)
                {
                    s_shared.TryRemove(Path, out _);
                }
            }
        }
        else
        {
            last = Interlocked.Decrement(ref _refCount) == 0;
        }

        if (!last)
        {
            return;
        }

        _closing = true;
        _wake.Set();
        await _writerDone.Task.ConfigureAwait(false);
    }

    /// <summary>
    /// Stops the writer at once, dropping what is queued, as if the process were killed (tests only).
    /// </summary>
    internal void Kill()
    {
        _killed = true;
        _closing = true;
        while (_queue.TryDequeue(out WriteOp? op))
        {
            op.Fail(new ObjectDisposedException(nameof(SqliteStore), "The store was killed."));
        }

        _wake.Set();
    }

    /// <summary>Queues a write; it completes when committed.</summary>
    public void Enqueue(WriteOp op)
    {
        if (_killed || (_closing && !_writer.IsAlive))
        {
            op.Fail(new ObjectDisposedException(nameof(SqliteStore)));
            return;
        }

        _queue.Enqueue(op);
        _wake.Set();
    }

    /// <summary>Wakes the writer (to look at cancelled parked ops).</summary>
    public void Wake()
    {
        if (!_killed)
        {
            _wake.Set();
        }
    }

    /// <summary>Queues a write and waits until it is committed.</summary>
    public Task RunAsync(WriteOp op)
    {
        Enqueue(op);
        return op.Completion;
    }

    /// <summary>Runs a read on a pooled connection of its own (WAL readers never wait for writers).</summary>
    public T Read<T>(Func<SqliteConnection, T> read)
    {
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return read(connection);
    }

    private void Open()
    {
        _connection = new SqliteConnection(_connectionString);
        _connection.Open();
        Execute(_connection, "PRAGMA busy_timeout = 5000;");
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                // WAL lets readers run beside the one writer; NORMAL syncs at checkpoints, not at every
                // commit, which in WAL mode still survives a process crash (only power loss can lose the tail).
                Execute(_connection, "PRAGMA journal_mode = WAL;");
                Execute(_connection, "PRAGMA synchronous = NORMAL;");
                using SqliteTransaction tx = _connection.BeginTransaction(deferred: false);
                Execute(_connection, Schema.Create, tx);
                tx.Commit();
                break;
            }
            catch (SqliteException ex) when (IsBusy(ex) && attempt < MaxBusyRetries)
            {
                Thread.Sleep(10 * (attempt + 1));
            }
        }

        _context = new WriteContext(_connection, this);
        _writer.Start();
    }

    private static void Execute(SqliteConnection connection, string sql, SqliteTransaction? tx = null)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        command.ExecuteNonQuery();
    }

    internal static bool IsBusy(SqliteException ex) => ex.SqliteErrorCode is 5 or 6; // SQLITE_BUSY, SQLITE_LOCKED

    private void WriterLoop()
    {
        var batch = new List<WriteOp>(MaxOpsPerTransaction);
        TimeSpan poll = s_minPoll;
        long lastRetry = Environment.TickCount64;
        try
        {
            while (true)
            {
                // With parked takes or watching result waiters, the writer polls other processes' commits
                // with a back-off from 1 ms to 100 ms; otherwise it sleeps until work comes.
                bool watching = _parked.Count > 0 || Volatile.Read(ref _watchUntil) > Environment.TickCount64;
                bool woken = watching ? _wake.WaitOne(poll) : _wake.WaitOne();
                if (_killed)
                {
                    return;
                }

                bool external = watching && CommittedElsewhere();
                if (external)
                {
                    External.Pulse();
                }

                while (batch.Count < MaxOpsPerTransaction && _queue.TryDequeue(out WriteOp? op))
                {
                    batch.Add(op);
                }

                bool retry = woken || external || _closing || Environment.TickCount64 - lastRetry >= ForcedRetryMs;
                if (retry || _parked.Any(p => p.IsCancelled))
                {
                    foreach (WriteOp parked in _parked)
                    {
                        if (parked.IsCancelled || _closing)
                        {
                            parked.Complete();
                        }
                        else
                        {
                            batch.Add(parked);
                        }
                    }

                    _parked.Clear();
                    lastRetry = Environment.TickCount64;
                }

                if (batch.Count > 0)
                {
                    Commit(batch);
                    batch.Clear();
                }

                poll = woken || external ? s_minPoll : TimeSpan.FromTicks(Math.Min(poll.Ticks * 2, s_maxPoll.Ticks));

                if (!_queue.IsEmpty)
                {
                    // The event is set once for many enqueues: keep draining while work is left.
                    _wake.Set();
                }
                else if (_closing)
                {
                    return;
                }
            }
        }
        finally
        {
            while (_queue.TryDequeue(out WriteOp? left))
            {
                left.Fail(new ObjectDisposedException(nameof(SqliteStore)));
            }

            foreach (WriteOp parked in _parked)
            {
                parked.Complete();
            }

            _parked.Clear();
            _context?.Dispose();
            _dataVersionCommand?.Dispose();
            _connection?.Dispose();

            // _wake is left to the finalizer: a late Enqueue may still set it.
            _writerDone.TrySetResult();
        }
    }

    /// <summary>Whether another connection committed since the last check (SQLite's <c>PRAGMA data_version</c>).</summary>
    private bool CommittedElsewhere()
    {
        try
        {
            _dataVersionCommand ??= CreateDataVersionCommand();
            long version = (long)_dataVersionCommand.ExecuteScalar()!;
            long previous = _dataVersion;
            _dataVersion = version;
            return previous >= 0 && version != previous;
        }
        catch (SqliteException ex)
        {
            Log.WriteFailed(_logger, Path, ex);
            return true;
        }
    }

    private SqliteCommand CreateDataVersionCommand()
    {
        SqliteCommand command = _connection!.CreateCommand();
        command.CommandText = "PRAGMA data_version";
        command.Prepare();
        return command;
    }

    /// <summary>Commits a batch; returns whether a parked op found something or a write woke consumers.</summary>
    private bool Commit(List<WriteOp> batch)
    {
        try
        {
            RunInTransaction(batch);
        }
        catch (Exception ex) when (batch.Count > 1 && !IsBusyException(ex))
        {
            // One bad write must not fail the others of its batch: retry each on its own.
            foreach (WriteOp op in batch)
            {
                try
                {
                    RunInTransaction([op]);
                }
                catch (Exception single)
                {
                    Log.WriteFailed(_logger, Path, single);
                    op.Fail(single);
                }
            }

            return true;
        }
        catch (Exception ex)
        {
            Log.WriteFailed(_logger, Path, ex);
            foreach (WriteOp op in batch)
            {
                op.Fail(ex);
            }

            return false;
        }

        bool messages = false;
        bool fanout = false;
        bool found = false;
        var completed = new List<WriteOp>(batch.Count);
        foreach (WriteOp op in batch)
        {
            messages |= op.WakesConsumers;
            fanout |= op.WakesSubscribers;
            if (op.ShouldPark)
            {
                _parked.Add(op);
            }
            else
            {
                found |= op.ParksWhenEmpty;
                completed.Add(op);
            }
        }

        WriteOp.CompleteAll(completed);

        if (messages)
        {
            Messages.Pulse();
        }

        if (fanout)
        {
            Fanout.Pulse();
        }

        return found || messages;
    }

    private static bool IsBusyException(Exception ex) => ex is SqliteException s && IsBusy(s);

    private void RunInTransaction(IReadOnlyList<WriteOp> ops)
    {
        WriteContext context = _context!;
        for (int attempt = 0; ; attempt++)
        {
            SqliteTransaction? tx = null;
            try
            {
                tx = _connection!.BeginTransaction(deferred: false);
                context.Begin(tx);
                foreach (WriteOp op in ops)
                {
                    op.Execute(context);
                }

                tx.Commit();
                Interlocked.Increment(ref _commits);
                return;
            }
            catch (SqliteException ex) when (IsBusy(ex) && attempt < MaxBusyRetries)
            {
                Log.Busy(_logger, Path, attempt + 1);
                SafeRollback(tx);
                Thread.Sleep(Math.Min(5 << attempt, 250));
            }
            catch
            {
                SafeRollback(tx);
                throw;
            }
            finally
            {
                tx?.Dispose();
            }
        }
    }

    private static void SafeRollback(SqliteTransaction? tx)
    {
        try
        {
            tx?.Rollback();
        }
        catch (SqliteException)
        {
            // The transaction may already be gone (SQLite rolls back on some errors by itself).
        }
        catch (InvalidOperationException)
        {
        }
    }
}
