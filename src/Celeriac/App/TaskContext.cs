using System.Text.Json;
using Celeriac.Protocol;

namespace Celeriac;

/// <summary>
/// What a running task knows about itself (Celery's <c>self.request</c>). Declare a parameter of this type
/// to receive it.
/// </summary>
public sealed class TaskContext
{
    private static readonly AsyncLocal<TaskContext?> s_current = new();
    private readonly ITaskStateStore? _storeState;

    internal TaskContext(TaskMessage message, string queue, string hostname, CancellationToken cancellation, ITaskStateStore? storeState = null)
    {
        Message = message;
        Queue = queue;
        Hostname = hostname;
        CancellationToken = cancellation;
        _storeState = storeState;
    }

    internal TaskMessage Message { get; }

    /// <summary>
    /// A context as a worker would give a task, for calling a task's method directly in a unit test: the id, name,
    /// arguments and retries given here are what the task reads. With <paramref name="task"/> (a task of an app),
    /// <see cref="App"/> is its app and <see cref="RetryAsync"/> sends the retry through it; without, a retry throws
    /// its exception, as Celery's <c>called_directly</c>.
    /// </summary>
    public static TaskContext ForTest(
        string? id = null,
        string name = "tasks.test",
        IReadOnlyList<object?>? args = null,
        IReadOnlyDictionary<string, object?>? kwargs = null,
        int retries = 0,
        string queue = "celery",
        string hostname = "celery@test",
        CeleriacTask? task = null,
        CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var headers = new TaskHeaders { Task = task?.Name ?? name, Id = id ?? Guid.NewGuid().ToString(), Retries = retries };
        Transport.TransportMessage encoded = TaskMessage.Encode(headers, args, kwargs, null, null, null) with { RoutingKey = queue };
        if (!TaskMessage.TryDecode(encoded, out TaskMessage? message, out _, out _, out string? error))
        {
            throw new ArgumentException("the arguments cannot be sent as JSON: " + error);
        }

        return new TaskContext(message!, queue, hostname, cancellation) { Definition = task };
    }

    /// <summary>
    /// The task running on this flow of control (Celery's <c>current_task.request</c>), or <see langword="null"/> outside
    /// a task. A task sent from inside another gets it as its parent, and its root, as in Celery.
    /// </summary>
    public static TaskContext? Current => s_current.Value;

    /// <summary>Makes <paramref name="context"/> current for the calling async method and what it awaits.</summary>
    internal static void SetCurrent(TaskContext? context) => s_current.Value = context;

    /// <summary>The running task, when a worker runs it (its options and app are what a retry needs).</summary>
    internal CeleriacTask? Definition { get; init; }

    /// <summary>Whether eager mode runs it (Celery's <c>request.is_eager</c>): a retry runs it again at once, nothing is sent.</summary>
    internal bool IsEager { get; init; }

    private List<System.Text.Json.Nodes.JsonNode>? _children;

    /// <summary>The app running the task, when a worker runs it (to build and send signatures from inside a task).</summary>
    public CeleriacApp? App => Definition?.App;

    /// <summary>Records a task sent while this one runs, as Celery's <c>add_trail</c> does, for the stored result's <c>children</c>.</summary>
    internal void AddChild(AsyncResult child)
    {
        lock (this)
        {
            (_children ??= []).Add(child.AsTuple());
        }
    }

    /// <summary>The children recorded so far as a JSON list, or <see langword="null"/> for none.</summary>
    internal byte[]? ChildrenJson()
    {
        if (Volatile.Read(ref _children) is null)
        {
            return null;
        }

        lock (this)
        {
            return _children is null ? null : System.Text.Encoding.UTF8.GetBytes(new System.Text.Json.Nodes.JsonArray([.. _children.Select(c => c.DeepClone())]).ToJsonString());
        }
    }

    /// <summary>The chord this task is a member of (the body's signature), or <see langword="null"/>.</summary>
    public Signature? Chord => EmbedSignature("chord");

    /// <summary>
    /// Replaces this task with <paramref name="signature"/> (Celery's <c>self.replace(sig)</c>) and returns the exception
    /// to throw: <code>throw await context.ReplaceAsync(add.S(2, 2));</code> The signature takes this task's id, its
    /// callbacks, error callbacks, chord membership and the rest of its chain; this task stores nothing. A group is
    /// joined into a list first (as Celery, by a chord on <c>celery.accumulate</c>).
    /// </summary>
    public async ValueTask<IgnoreException> ReplaceAsync(Signature signature, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(signature);
        CeleriacApp app = App ?? throw new InvalidOperationException("only a task run by a worker can replace itself");
        await app.Canvas.ReplaceAsync(this, signature, ct.CanBeCanceled ? ct : CancellationToken).ConfigureAwait(false);
        return new IgnoreException("Replaced by new task");
    }

    /// <summary>
    /// Adds <paramref name="signature"/> to the chord this task is a member of (Celery's <c>add_to_chord</c>), and sends
    /// it: the chord's body then waits for its result too. Only the Redis result backend supports it, as in Celery.
    /// </summary>
    public async ValueTask<AsyncResult> AddToChordAsync(Signature signature, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(signature);
        CeleriacApp app = App ?? throw new InvalidOperationException("only a task run by a worker can add to its chord");
        return await app.Canvas.AddToChordAsync(this, signature, ct.CanBeCanceled ? ct : CancellationToken).ConfigureAwait(false);
    }

    /// <summary>A signature (or list of them) from the message's embed.</summary>
    internal Signature? EmbedSignature(string name) =>
        Message.Embed.ValueKind == JsonValueKind.Object && Message.Embed.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.Object
            ? Signature.FromJson(e)
            : null;

    /// <summary>The signatures in a list of the message's embed (callbacks, errbacks, chain).</summary>
    internal List<Signature> EmbedSignatures(string name) => CanvasRunner.EmbedList(Message.Embed, name);

    /// <summary>The task id.</summary>
    public string Id => Message.Headers.Id;

    /// <summary>The task name.</summary>
    public string Name => Message.Headers.Task;

    /// <summary>How many times it has been retried.</summary>
    public int Retries => Message.Headers.Retries;

    /// <summary>The id of the first task of the workflow.</summary>
    public string? RootId => Message.Headers.RootId;

    /// <summary>The id of the task that sent this one.</summary>
    public string? ParentId => Message.Headers.ParentId;

    /// <summary>The group it belongs to.</summary>
    public string? GroupId => Message.Headers.Group;

    /// <summary>When it was due.</summary>
    public DateTimeOffset? Eta => Message.Headers.Eta;

    /// <summary>When it expires.</summary>
    public DateTimeOffset? Expires => Message.Headers.Expires;

    /// <summary>The typed headers it came with.</summary>
    public TaskHeaders Headers => Message.Headers;

    /// <summary>The positional arguments as sent.</summary>
    public JsonElement Args => Message.Args;

    /// <summary>The keyword arguments as sent.</summary>
    public JsonElement Kwargs => Message.Kwargs;

    /// <summary>The queue it was taken from.</summary>
    public string Queue { get; }

    /// <summary>The exchange it was published to.</summary>
    public string Exchange => Message.Transport.Exchange;

    /// <summary>The routing key it was published with.</summary>
    public string RoutingKey => Message.Transport.RoutingKey;

    /// <summary>Where the client waits for replies.</summary>
    public string? ReplyTo => Message.Transport.ReplyTo;

    /// <summary>The worker's node name.</summary>
    public string Hostname { get; }

    /// <summary>Cancelled when the task is revoked with terminate, times out, or the worker stops cold.</summary>
    public CancellationToken CancellationToken { get; internal set; }

    /// <summary>
    /// Stores a state for this task while it runs, as Celery's <c>update_state(state=..., meta=...)</c>: a custom state
    /// such as <c>"PROGRESS"</c> with <paramref name="meta"/> (any JSON-serializable value, e.g.
    /// <c>new { current = 3, total = 10 }</c>) that clients, Python ones too, read while the task runs. The task's
    /// final state replaces it. Stored even when the task ignores its result, as in Celery.
    /// </summary>
    public ValueTask UpdateStateAsync(string state, object? meta = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(state);
        return _storeState is null ? ValueTask.CompletedTask : _storeState.StoreStateAsync(state, meta, ct);
    }

    /// <summary>
    /// Sends this task again to run later, as Celery's <c>self.retry(...)</c>, and returns the exception to throw:
    /// <code>throw await context.RetryAsync(ex, countdown: TimeSpan.FromSeconds(30));</code>
    /// The retry has the same id and arguments and <see cref="Retries"/> + 1; it goes where this one came from
    /// (or to <paramref name="queue"/>), due after <paramref name="countdown"/>, at <paramref name="eta"/>, or else after
    /// the task's <see cref="TaskOptions.DefaultRetryDelay"/>. Once thrown, the worker stores RETRY with
    /// <paramref name="exc"/> as the reason and acks this message. When <see cref="Retries"/> has reached
    /// <paramref name="maxRetries"/> (else the task's <see cref="TaskOptions.MaxRetries"/>) nothing is sent and this
    /// throws <paramref name="exc"/>, or <see cref="MaxRetriesExceededException"/> without one: the task fails with it.
    /// </summary>
    public ValueTask<RetryException> RetryAsync(Exception? exc = null, TimeSpan? countdown = null, DateTimeOffset? eta = null, int? maxRetries = null, string? queue = null, CancellationToken ct = default)
    {
        if (Definition is not { } task)
        {
            // Not run by a worker (Celery's called_directly): there is nothing to send again.
            throw exc ?? new RetryException("Task can be retried");
        }

        if (IsEager)
        {
            return ValueTask.FromResult(EagerRunner.Retry(task, Message, exc, countdown, eta, maxRetries));
        }

        return TaskRetry.RetryAsync(task, Message, Queue, exc, countdown, eta, maxRetries, queue, ct.CanBeCanceled ? ct : CancellationToken);
    }
}

/// <summary>Where a running task's <see cref="TaskContext.UpdateStateAsync"/> stores its states.</summary>
internal interface ITaskStateStore
{
    ValueTask StoreStateAsync(string state, object? meta, CancellationToken ct);
}
