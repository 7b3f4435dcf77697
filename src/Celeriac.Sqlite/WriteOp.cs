namespace Celeriac.Sqlite;

/// <summary>
/// A write queued for the store's writer thread. It may run more than once (a busy file rolls the batch
/// back and runs it again), so <see cref="Execute"/> keeps its result only in the op until
/// <see cref="Complete"/>, which the writer calls after the commit.
/// </summary>
internal abstract class WriteOp
{
    /// <summary>Whether a commit of it may give consumers something to take.</summary>
    public bool WakesConsumers { get; init; }

    /// <summary>Whether a commit of it may give fanout subscribers something to read.</summary>
    public bool WakesSubscribers { get; init; }

    /// <summary>Completes after the commit.</summary>
    public abstract Task Completion { get; }

    /// <summary>
    /// Whether the writer should keep it and run it again later instead of completing it (a take that
    /// found nothing waits on the writer thread, so an idle consumer costs no thread hops).
    /// </summary>
    public virtual bool ShouldPark => false;

    /// <summary>Whether it is a take that parks while it finds nothing.</summary>
    public virtual bool ParksWhenEmpty => false;

    /// <summary>Whether its waiter gave up; a parked op is then completed with what it has.</summary>
    public bool IsCancelled => Volatile.Read(ref _cancelled) != 0;

    private int _cancelled;

    /// <summary>Gives up waiting; the store is woken to complete it.</summary>
    public void Cancel(SqliteStore store)
    {
        if (Interlocked.Exchange(ref _cancelled, 1) == 0)
        {
            store.Wake();
        }
    }

    public abstract void Execute(WriteContext context);

    /// <summary>Completes it: its commit callback here, its waiter on the thread pool.</summary>
    public void Complete()
    {
        Committed();
        ThreadPool.UnsafeQueueUserWorkItem(static op => op.Release(), this, preferLocal: false);
    }

    /// <summary>
    /// Completes a committed batch: the commit callbacks here (on the writer thread: bookkeeping only), then every
    /// waiter in one thread-pool work item. A work item per op would be a thread hand-off per task, which costs more
    /// than the task; the waiters are short continuations (a result stored, a message settled).
    /// </summary>
    public static void CompleteAll(List<WriteOp> ops)
    {
        if (ops.Count == 0)
        {
            return;
        }

        foreach (WriteOp op in ops)
        {
            op.Committed();
        }

        ThreadPool.UnsafeQueueUserWorkItem(
            static done =>
            {
                foreach (WriteOp op in done)
                {
                    op.Release();
                }
            },
            ops,
            preferLocal: false);
    }

    /// <summary>Runs the commit callback.</summary>
    protected abstract void Committed();

    /// <summary>Completes the waiter's task (its continuations run on the calling thread).</summary>
    protected abstract void Release();

    public abstract void Fail(Exception error);
}

/// <summary>A write with a result.</summary>
internal sealed class WriteOp<T>(Func<WriteContext, T> execute, Action<T>? committed = null, Action<Exception>? failed = null) : WriteOp
{
    /// <summary>When set, a result it holds true for parks the op (see <see cref="WriteOp.ShouldPark"/>).</summary>
    public Func<T, bool>? ParkWhen { get; init; }

    public override bool ShouldPark => ParkWhen is { } park && !IsCancelled && park(_result);

    public override bool ParksWhenEmpty => ParkWhen is not null;

    // Continuations run where Release is called: never on the writer thread (see CompleteAll).
    private readonly TaskCompletionSource<T> _done = new();
    private T _result = default!;

    public Task<T> Task => _done.Task;

    public override Task Completion => _done.Task;

    public override void Execute(WriteContext context) => _result = execute(context);

    // Runs on the writer thread: keep it to bookkeeping.
    protected override void Committed() => committed?.Invoke(_result);

    protected override void Release() => _done.TrySetResult(_result);

    public override void Fail(Exception error)
    {
        failed?.Invoke(error);
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Done.TrySetException(state.Error), (Done: _done, Error: error), preferLocal: false);
    }
}
