using Microsoft.Extensions.Logging;

namespace Celeriac.Concurrency;

/// <summary>
/// The default pool (<c>-P async</c>): a task runs on the worker's slot, in the async flow that took it, so a task that
/// completes synchronously costs no thread hand-off. A task with a time limit runs on the .NET thread pool instead, so
/// that code which blocks can be left behind at the hard limit. Blocking code holds a thread-pool thread: pick
/// <see cref="ThreadsPool"/> for it. With <c>solo</c> it runs one task at a time.
/// </summary>
public sealed class AsyncPool : ITaskPool
{
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly bool _solo;
    private int _size;

    /// <summary>Creates the pool; <paramref name="solo"/> fixes its size at one (Celery's <c>-P solo</c>).</summary>
    public AsyncPool(int size, TimeProvider time, ILogger logger, bool solo = false)
    {
        _time = time;
        _logger = logger;
        _solo = solo;
        _size = solo ? 1 : Math.Max(1, size);
    }

    /// <inheritdoc />
    public string Name => _solo ? "solo" : "async";

    /// <inheritdoc />
    public int Size => Volatile.Read(ref _size);

    /// <inheritdoc />
    public ValueTask StartAsync(CancellationToken ct = default) => ValueTask.CompletedTask;

    /// <inheritdoc />
    public ValueTask<TaskOutcome> RunAsync(PoolJob job, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.HasTimeLimit
            ? TimeLimitGuard.RunAsync(job, token => Task.Run(() => job.RunAsync(token).AsTask(), CancellationToken.None), null, _time, _logger, ct)
            : job.RunAsync(ct);
    }

    /// <inheritdoc />
    public void Resize(int size)
    {
        if (!_solo)
        {
            Volatile.Write(ref _size, Math.Max(1, size));
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
