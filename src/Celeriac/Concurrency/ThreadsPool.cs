using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Celeriac.Concurrency;

/// <summary>
/// Runs each task on a dedicated thread of its own (<c>-P threads</c>), so that tasks that block (<c>Thread.Sleep</c>,
/// synchronous I/O) never starve the .NET thread pool that the consumer and the other tasks need. An async task's
/// continuations still run on the thread pool, while its dedicated thread waits for it. At a hard time limit the
/// thread is left to the stuck code and a new one takes its place.
/// </summary>
public sealed class ThreadsPool : ITaskPool
{
    private readonly BlockingCollection<WorkItem?> _queue = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private int _size;
    private int _threads;
    private int _started;

    /// <summary>Creates a pool of <paramref name="size"/> threads, started by <see cref="StartAsync"/>.</summary>
    public ThreadsPool(int size, TimeProvider time, ILogger logger)
    {
        _size = Math.Max(1, size);
        _time = time;
        _logger = logger;
    }

    /// <inheritdoc />
    public string Name => "threads";

    /// <inheritdoc />
    public int Size => Volatile.Read(ref _size);

    /// <summary>Threads alive and serving the pool (a thread left to a task past its hard limit no longer counts).</summary>
    public int Threads => Volatile.Read(ref _threads);

    /// <inheritdoc />
    public ValueTask StartAsync(CancellationToken ct = default)
    {
        Interlocked.Exchange(ref _started, 1);
        Resize(Size);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<TaskOutcome> RunAsync(PoolJob job, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (!job.HasTimeLimit)
        {
            return new ValueTask<TaskOutcome>(Post(job, ct));
        }

        WorkItem? posted = null;
        return TimeLimitGuard.RunAsync(
            job,
            token =>
            {
                posted = new WorkItem(job, token);
                _queue.Add(posted, CancellationToken.None);
                return posted.Completion.Task;
            },
            () => Abandon(posted!),
            _time,
            _logger,
            ct);
    }

    /// <inheritdoc />
    public void Resize(int size)
    {
        size = Math.Max(1, size);
        lock (_gate)
        {
            Volatile.Write(ref _size, size);
            if (Volatile.Read(ref _started) == 0 || _queue.IsAddingCompleted)
            {
                return;
            }

            while (_threads < size)
            {
                StartThread();
            }

            // Each null tells one idle thread to end; a busy one ends after its task.
            for (int extra = _threads - size; extra > 0; extra--)
            {
                _threads--;
                _queue.Add(null);
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _queue.CompleteAdding();
        return ValueTask.CompletedTask;
    }

    private Task<TaskOutcome> Post(PoolJob job, CancellationToken ct)
    {
        var item = new WorkItem(job, ct);
        _queue.Add(item, CancellationToken.None);
        return item.Completion.Task;
    }

    /// <summary>A hard limit left the thread to its task: it ends once the task returns, and a new thread serves the pool.</summary>
    private void Abandon(WorkItem item)
    {
        lock (_gate)
        {
            if (item.Owner is { } owner && !owner.Abandoned)
            {
                owner.Abandoned = true;
                _threads--;
                if (!_queue.IsAddingCompleted)
                {
                    while (_threads < Volatile.Read(ref _size))
                    {
                        StartThread();
                    }
                }
            }
        }
    }

    private void StartThread()
    {
        _threads++;
        var owner = new Owner();
        var thread = new Thread(() => Serve(owner)) { IsBackground = true, Name = "celeriac-pool" };

        // Not flowing the caller's async locals: each task sets its own context.
        thread.UnsafeStart();
    }

    private void Serve(Owner owner)
    {
        try
        {
            foreach (WorkItem? item in _queue.GetConsumingEnumerable())
            {
                if (item is null)
                {
                    return;
                }

                lock (_gate)
                {
                    item.Owner = owner;
                }

                try
                {
                    ValueTask<TaskOutcome> run = item.Job.RunAsync(item.Token);
                    item.Completion.TrySetResult(run.IsCompleted ? run.Result : run.AsTask().GetAwaiter().GetResult());
                }
                catch (Exception ex)
                {
                    item.Completion.TrySetException(ex);
                }

                if (owner.Abandoned)
                {
                    return;
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // Disposed while waiting: the worker has stopped.
        }
    }

    private sealed class Owner
    {
        private volatile bool _abandoned;

        public bool Abandoned
        {
            get => _abandoned;
            set => _abandoned = value;
        }
    }

    private sealed class WorkItem(PoolJob job, CancellationToken token)
    {
        public PoolJob Job => job;

        public CancellationToken Token => token;

        public Owner? Owner { get; set; }

        public TaskCompletionSource<TaskOutcome> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
