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

    public abstract void Complete();

    public abstract void Fail(Exception error);
}

/// <summary>A write with a result.</summary>
internal sealed class WriteOp<T>(Func<WriteContext, T> execute, Action<T>? committed = null, Action<Exception>? failed = null) : WriteOp
{
    /// <summary>When set, a result it holds true for parks the op (see <see cref="WriteOp.ShouldPark"/>).</summary>
    public Func<T, bool>? ParkWhen { get; init; }

    public override bool ShouldPark => ParkWhen is { } park && !IsCancelled && park(_result);

    public override bool ParksWhenEmpty => ParkWhen is not null;

    private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private T _result = default!;

    public Task<T> Task => _done.Task;

    public override Task Completion => _done.Task;

    public override void Execute(WriteContext context) => _result = execute(context);

    public override void Complete()
    {
        // Runs on the writer thread: keep it to bookkeeping.
        committed?.Invoke(_result);
        _done.TrySetResult(_result);
    }

    public override void Fail(Exception error)
    {
        failed?.Invoke(error);
        _done.TrySetException(error);
    }
}
