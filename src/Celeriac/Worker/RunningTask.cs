namespace Celeriac.Worker;

/// <summary>
/// A task that runs now: what stops it (a terminate, a cold shutdown) and who settles it: its slot when its run ends,
/// or a shutdown that gave up on it first.
/// </summary>
internal sealed class RunningTask(CancellationTokenSource run, WorkerRequest request, bool acksLate, bool storeResult)
{
    private const int Running = 0;
    private const int Finished = 1;
    private const int Abandoned = 2;
    private int _terminated;
    private int _state;
    private TaskCompletionSource? _abandoned;

    public WorkerRequest Request => request;

    public bool AcksLate => acksLate;

    public bool StoreResult => storeResult;

    public CancellationToken Token => run.Token;

    public bool Terminated => Volatile.Read(ref _terminated) != 0;

    /// <summary>Called by the slot when the run has ended: the task that settles the abandoned one if a shutdown took it first, else null.</summary>
    public Task? AbandonedBeforeItFinished() =>
        Interlocked.CompareExchange(ref _state, Finished, Running) == Running ? null : Volatile.Read(ref _abandoned)!.Task;

    /// <summary>Takes the task from its slot for settling, unless it has just ended; complete <paramref name="abandoned"/> once settled.</summary>
    public bool TryAbandon([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TaskCompletionSource? abandoned)
    {
        // Published before the state changes, so that a slot that sees Abandoned also sees what to wait for.
        abandoned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _abandoned, abandoned);
        if (Interlocked.CompareExchange(ref _state, Abandoned, Running) == Running)
        {
            return true;
        }

        abandoned = null;
        return false;
    }

    /// <summary>Celery's terminate: cancels the task's token; it ends REVOKED whatever it does then.</summary>
    public bool Terminate()
    {
        if (Interlocked.Exchange(ref _terminated, 1) != 0)
        {
            return false;
        }

        Cancel();
        return true;
    }

    /// <summary>Cancels the task's token (a shutdown cutting it off).</summary>
    public void Cancel()
    {
        try
        {
            run.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // It has just finished.
        }
    }
}
