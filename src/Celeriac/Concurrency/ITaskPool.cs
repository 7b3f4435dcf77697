namespace Celeriac.Concurrency;

/// <summary>
/// Where and how a worker runs its tasks (Celery's pool, <c>-P</c>): in its own async flow (<c>async</c>), on dedicated
/// threads (<c>threads</c>), in child processes (<c>prefork</c>) or one at a time inline (<c>solo</c>). The worker
/// calls <see cref="RunAsync"/> at most <see cref="Size"/> times at once; the pool applies the job's time limits and
/// returns how the run ended, never throwing for what the task did.
/// </summary>
public interface ITaskPool : IAsyncDisposable
{
    /// <summary>The pool's name as Celery's <c>-P</c> names it (<c>async</c>, <c>threads</c>, <c>prefork</c>, <c>solo</c>).</summary>
    string Name { get; }

    /// <summary>How many tasks it runs at once now (threads or child processes, where it has them).</summary>
    int Size { get; }

    /// <summary>Starts what the pool needs before the first task (threads, child processes).</summary>
    ValueTask StartAsync(CancellationToken ct = default);

    /// <summary>
    /// Runs one task and returns its outcome. <paramref name="ct"/> is cancelled by a terminate or a cold shutdown;
    /// the task's token is cancelled with it, and at the job's soft time limit. At the hard limit the pool stops the
    /// run (kills its process, where it has one) and returns <see cref="TaskOutcomeKind.TimeLimitExceeded"/>.
    /// </summary>
    ValueTask<TaskOutcome> RunAsync(PoolJob job, CancellationToken ct = default);

    /// <summary>Grows or shrinks the pool to <paramref name="size"/> (at least 1); busy threads or processes finish their task first.</summary>
    void Resize(int size);
}

/// <summary>
/// One task for a pool: what to run here, what to send elsewhere, and its time limits. The worker's own request type
/// derives from it, so handing a task to a pool allocates nothing.
/// </summary>
public abstract class PoolJob
{
    /// <summary>The task id.</summary>
    public abstract string TaskId { get; }

    /// <summary>The task name.</summary>
    public abstract string TaskName { get; }

    /// <summary>The soft time limit in seconds: the task's token is cancelled then, and a failure after it is <c>SoftTimeLimitExceeded</c>.</summary>
    public double? SoftTimeLimit { get; protected set; }

    /// <summary>The hard time limit in seconds: the run is stopped then.</summary>
    public double? HardTimeLimit { get; protected set; }

    /// <summary>Whether the job has a time limit.</summary>
    public bool HasTimeLimit => SoftTimeLimit is not null || HardTimeLimit is not null;

    /// <summary>Runs the task in this process, honouring <paramref name="ct"/>; it returns its outcome and does not throw.</summary>
    public abstract ValueTask<TaskOutcome> RunAsync(CancellationToken ct);

    /// <summary>
    /// The request as bytes, for a pool that runs it in another process (the prefork pool's children), or
    /// <see langword="null"/> when it cannot be sent.
    /// </summary>
    public virtual ReadOnlyMemory<byte>? Serialize() => null;
}
