using Celeriac.Concurrency;
using Celeriac.Protocol;
using Celeriac.Transport;

namespace Celeriac.Worker;

/// <summary>Where a request is in the worker (what <c>inspect reserved / scheduled / active</c> list).</summary>
public enum RequestState
{
    /// <summary>Prefetched: waiting for a free slot.</summary>
    Reserved,

    /// <summary>Waiting for its ETA or countdown, or for its rate limit's next token.</summary>
    Scheduled,

    /// <summary>Running.</summary>
    Active,
}

/// <summary>
/// A delivery the worker holds, from the consumer to its settlement. It is decoded by the slot that takes it (or
/// before an ETA wait), so that one consumer loop never limits throughput. It is also the job the pool runs and the
/// store of the states the task reports, so that running it allocates no delegates.
/// </summary>
internal sealed class WorkerRequest(Delivery delivery, CeleriacWorker owner) : PoolJob, ITaskStateStore
{
    public Delivery Delivery { get; } = delivery;

    /// <inheritdoc />
    public override string TaskId => Message!.Headers.Id;

    /// <inheritdoc />
    public override string TaskName => Message!.Headers.Task;

    /// <summary>Whether the run should give a success's value as JSON (to store or log it).</summary>
    public bool ResultJson { get; private set; }

    /// <summary>The worker's cold-stop token, which tells a lost run apart from a terminated one.</summary>
    public CancellationToken Abort { get; private set; }

    /// <summary>Prepares the request to be handed to a pool.</summary>
    public void PrepareRun(double? soft, double? hard, bool resultJson, CancellationToken abort)
    {
        SoftTimeLimit = soft;
        HardTimeLimit = hard;
        ResultJson = resultJson;
        Abort = abort;
    }

    /// <inheritdoc />
    public override ValueTask<TaskOutcome> RunAsync(CancellationToken ct) => owner.RunHereAsync(this, ct);

    /// <inheritdoc />
    public override ReadOnlyMemory<byte>? Serialize() => PoolRequest.Encode(Message!, Delivery.Queue, ResultJson, SoftTimeLimit);

    /// <inheritdoc />
    public ValueTask StoreStateAsync(string state, object? meta, CancellationToken ct) => owner.StoreStateAsync(this, state, meta, ct);

    /// <summary>The decoded message, once decoded; disposed when the request is finished.</summary>
    public TaskMessage? Message { get; set; }

    public CeleriacTask? Task { get; set; }

    /// <summary>It has had its token from its task's rate limit.</summary>
    public bool RateLimitPassed { get; set; }

    public RequestState State { get; set; }

    /// <summary>When it was due, while it waits for an ETA.</summary>
    public DateTimeOffset? ScheduledFor { get; set; }

    /// <summary>When it started running.</summary>
    public DateTimeOffset? StartedAt { get; set; }

    /// <summary>What telemetry notes of it; made only while something listens, so a request nobody observes carries one null reference.</summary>
    public RequestTelemetry? Telemetry { get; set; }

    /// <summary>Cancels the running task (a terminate or a cold shutdown); set while active.</summary>
    public RunningTask? Running { get; set; }

    // The registry's list of held requests runs through the requests themselves (no node to allocate per request).
    internal WorkerRequest? RegistryPrevious;
    internal WorkerRequest? RegistryNext;
    internal bool Registered;

    /// <summary>Running now (between the registry's Activate and Deactivate), with its activation's number.</summary>
    internal volatile bool IsRunning;
    internal long Activation;

    /// <summary>Completed when the registry releases it; made only when a retry of the same task waits for it.</summary>
    internal TaskCompletionSource? Released;

    /// <summary>A snapshot for listing.</summary>
    public RequestInfo Describe(string hostname)
    {
        TaskMessage? m = Message;
        TransportMessage? raw = Delivery.Message;
        return new RequestInfo
        {
            Id = m?.Headers.Id ?? HeaderText(raw, "id") ?? "",
            Name = m?.Headers.Task ?? HeaderText(raw, "task") ?? "",
            Args = m is null ? null : m.Args.GetRawText(),
            Kwargs = m is null ? null : m.Kwargs.GetRawText(),
            State = State,
            Queue = Delivery.Queue,
            Eta = ScheduledFor ?? m?.Headers.Eta,
            StartedAt = StartedAt,
            Hostname = hostname,
            Redelivered = Delivery.Redelivered,
        };
    }

    private static string? HeaderText(TransportMessage? raw, string key) =>
        raw is not null && raw.Headers.TryGetValue(key, out object? v) ? v as string : null;
}

/// <summary>A request the worker holds, as remote control lists it.</summary>
public sealed record RequestInfo
{
    /// <summary>The task id.</summary>
    public required string Id { get; init; }

    /// <summary>The task name.</summary>
    public required string Name { get; init; }

    /// <summary>The positional arguments as JSON, once decoded.</summary>
    public string? Args { get; init; }

    /// <summary>The keyword arguments as JSON, once decoded.</summary>
    public string? Kwargs { get; init; }

    /// <summary>Where it is in the worker.</summary>
    public required RequestState State { get; init; }

    /// <summary>The queue it came from.</summary>
    public required string Queue { get; init; }

    /// <summary>When it is due.</summary>
    public DateTimeOffset? Eta { get; init; }

    /// <summary>When it started running.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>The worker's node name.</summary>
    public required string Hostname { get; init; }

    /// <summary>Whether the broker delivered it before.</summary>
    public bool Redelivered { get; init; }
}
