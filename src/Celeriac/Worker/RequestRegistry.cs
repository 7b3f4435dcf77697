using System.Collections.Concurrent;

namespace Celeriac.Worker;

/// <summary>
/// Every request the worker holds, from the moment the consumer takes it until it is finished, with its state
/// (reserved, scheduled, active). Remote control's <c>inspect reserved / scheduled / active</c> read it; the worker's
/// shutdown and <c>terminate</c> find running tasks here.
/// </summary>
internal sealed class RequestRegistry
{
    private readonly ConcurrentDictionary<WorkerRequest, byte> _held = new(ReferenceEqualityComparer.Instance);
    private readonly ConcurrentDictionary<string, WorkerRequest> _active = new(StringComparer.Ordinal);
    private int _reserved;

    /// <summary>Requests running now.</summary>
    public int ActiveCount => _active.Count;

    /// <summary>Requests prefetched and waiting for a slot.</summary>
    public int ReservedCount => Math.Max(0, Volatile.Read(ref _reserved));

    /// <summary>The running requests.</summary>
    public ICollection<WorkerRequest> Active => _active.Values;

    /// <summary>A request taken from the broker: reserved until a slot takes it.</summary>
    public void Reserve(WorkerRequest request)
    {
        request.State = RequestState.Reserved;
        Interlocked.Increment(ref _reserved);
        _held.TryAdd(request, 0);
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
        _active[request.Message!.Headers.Id] = request;
    }

    /// <summary>The request's run ended (its result may still be on its way).</summary>
    public void Deactivate(WorkerRequest request) =>
        _active.TryRemove(new KeyValuePair<string, WorkerRequest>(request.Message!.Headers.Id, request));

    /// <summary>The worker no longer holds it (settled, given back, or dropped).</summary>
    public void Release(WorkerRequest request)
    {
        if (_held.TryRemove(request, out _) && request.State == RequestState.Reserved)
        {
            Interlocked.Decrement(ref _reserved);
        }
    }

    /// <summary>The running request with this task id.</summary>
    public bool TryGetActive(string id, out WorkerRequest? request) => _active.TryGetValue(id, out request);

    /// <summary>The requests held in <paramref name="state"/> now (all of them for <see langword="null"/>).</summary>
    public List<WorkerRequest> Held(RequestState? state) => [.. _held.Keys.Where(r => state is null || r.State == state)];

    /// <summary>A snapshot of the requests in <paramref name="state"/>.</summary>
    public IReadOnlyList<RequestInfo> Snapshot(RequestState state, string hostname) =>
        _held.Keys.Where(r => r.State == state).Select(r => r.Describe(hostname)).ToList();
}
