namespace Celeriac.Worker;

/// <summary>
/// Every request the worker holds, from the moment the consumer takes it until it is finished, with its state
/// (reserved, scheduled, active). Remote control's <c>inspect reserved / scheduled / active</c> read it; the worker's
/// shutdown and <c>terminate</c> find running tasks here.
/// </summary>
/// <remarks>
/// Every task passes through it, while it is read only by remote control and shutdown: the held requests are a list
/// linked through the requests themselves under one lock, so that holding and releasing one allocates nothing, and
/// the lookups walk it (it is as long as what the worker holds: its prefetch window and its ETA tasks).
/// </remarks>
internal sealed class RequestRegistry
{
    private readonly Lock _gate = new();
    private WorkerRequest? _first;
    private int _reserved;
    private int _active;
    private long _activations;

    /// <summary>Requests running now.</summary>
    public int ActiveCount => Volatile.Read(ref _active);

    /// <summary>Requests prefetched and waiting for a slot.</summary>
    public int ReservedCount => Math.Max(0, Volatile.Read(ref _reserved));

    /// <summary>The running requests.</summary>
    public List<WorkerRequest> Active => Where(static r => r.IsRunning);

    /// <summary>A request taken from the broker: reserved until a slot takes it.</summary>
    public void Reserve(WorkerRequest request)
    {
        request.State = RequestState.Reserved;
        Interlocked.Increment(ref _reserved);
        lock (_gate)
        {
            if (request.Registered)
            {
                return;
            }

            request.Registered = true;
            request.RegistryPrevious = null;
            request.RegistryNext = _first;
            if (_first is not null)
            {
                _first.RegistryPrevious = request;
            }

            _first = request;
        }
    }

    /// <summary>A reserved request waits for its ETA or rate limit (outside the prefetch window).</summary>
    public void Schedule(WorkerRequest request, DateTimeOffset? due)
    {
        if (request.State == RequestState.Reserved)
        {
            Interlocked.Decrement(ref _reserved);
        }

        request.State = RequestState.Scheduled;
        request.ScheduledFor = due;
    }

    /// <summary>A scheduled request is due: it waits for a slot again.</summary>
    public void Unschedule(WorkerRequest request)
    {
        request.State = RequestState.Reserved;
        Interlocked.Increment(ref _reserved);
    }

    /// <summary>A slot starts running it.</summary>
    public void Activate(WorkerRequest request, RunningTask running, DateTimeOffset now)
    {
        if (request.State == RequestState.Reserved)
        {
            Interlocked.Decrement(ref _reserved);
        }

        request.State = RequestState.Active;
        request.StartedAt = now;
        request.Running = running;
        request.Activation = Interlocked.Increment(ref _activations);
        if (!request.IsRunning)
        {
            request.IsRunning = true;
            Interlocked.Increment(ref _active);
        }
    }

    /// <summary>The request's run ended (its result may still be on its way).</summary>
    public void Deactivate(WorkerRequest request)
    {
        if (request.IsRunning)
        {
            request.IsRunning = false;
            Interlocked.Decrement(ref _active);
        }
    }

    /// <summary>The worker no longer holds it (settled, given back, or dropped).</summary>
    public void Release(WorkerRequest request)
    {
        lock (_gate)
        {
            if (!request.Registered)
            {
                return;
            }

            request.Registered = false;
            if (request.RegistryPrevious is { } previous)
            {
                previous.RegistryNext = request.RegistryNext;
            }
            else
            {
                _first = request.RegistryNext;
            }

            if (request.RegistryNext is { } next)
            {
                next.RegistryPrevious = request.RegistryPrevious;
            }

            request.RegistryPrevious = null;
            request.RegistryNext = null;
            request.Released?.TrySetResult();
        }

        if (request.State == RequestState.Reserved)
        {
            Interlocked.Decrement(ref _reserved);
        }
    }

    /// <summary>
    /// An earlier run of <paramref name="request"/>'s task that this worker started and has not yet finished (its outcome
    /// may still be on its way to the result backend): completes when it is released; <see langword="null"/> when none.
    /// </summary>
    public Task? EarlierRun(WorkerRequest request)
    {
        string id = request.Message!.Headers.Id;
        lock (_gate)
        {
            for (WorkerRequest? r = _first; r is not null; r = r.RegistryNext)
            {
                if (r != request && r.State == RequestState.Active && r.Message?.Headers.Id == id)
                {
                    return (r.Released ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                }
            }
        }

        return null;
    }

    /// <summary>The running request with this task id (the last started, should a message have come twice).</summary>
    public bool TryGetActive(string id, out WorkerRequest? request)
    {
        request = null;
        lock (_gate)
        {
            for (WorkerRequest? r = _first; r is not null; r = r.RegistryNext)
            {
                if (r.IsRunning && (request is null || r.Activation > request.Activation) && r.Message?.Headers.Id == id)
                {
                    request = r;
                }
            }
        }

        return request is not null;
    }

    /// <summary>The requests held in <paramref name="state"/> now (all of them for <see langword="null"/>).</summary>
    public List<WorkerRequest> Held(RequestState? state) => state is { } s ? Where(r => r.State == s) : Where(static _ => true);

    /// <summary>A snapshot of the requests in <paramref name="state"/>.</summary>
    public IReadOnlyList<RequestInfo> Snapshot(RequestState state, string hostname)
    {
        var infos = new List<RequestInfo>();
        foreach (WorkerRequest r in Held(state))
        {
            try
            {
                infos.Add(r.Describe(hostname));
            }
            catch (ObjectDisposedException)
            {
                // Finished, released and its message disposed while being read: no longer held.
            }
        }

        return infos;
    }

    private List<WorkerRequest> Where(Func<WorkerRequest, bool> keep)
    {
        var found = new List<WorkerRequest>();
        lock (_gate)
        {
            for (WorkerRequest? r = _first; r is not null; r = r.RegistryNext)
            {
                if (keep(r))
                {
                    found.Add(r);
                }
            }
        }

        return found;
    }
}
