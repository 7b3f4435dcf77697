using System.Text.Json;
using Celeriac.Protocol;
using Celeriac.Results;

namespace Celeriac;

/// <summary>
/// A handle on a task's result (Celery's <c>AsyncResult</c>). The state properties show the last document
/// read; <see cref="RefreshAsync"/>, <see cref="GetStateAsync"/> and <see cref="GetAsync{T}"/> read it again.
/// </summary>
public class AsyncResult
{
    private readonly IResultBackend _backend;
    private TaskResultMeta? _meta;

    /// <summary>Creates a handle on a task id in a backend (constructible in tests).</summary>
    public AsyncResult(string id, IResultBackend backend)
    {
        Id = id;
        _backend = backend;
    }

    /// <summary>The task id.</summary>
    public string Id { get; }

    /// <summary>The task's name, when this handle knows it (it sent the task, or read an extended result); else <see langword="null"/>.</summary>
    public string? Name
    {
        get => _name ?? _meta?.Extended?.Name;
        init => _name = value;
    }

    private readonly string? _name;

    /// <summary>The backend it reads.</summary>
    protected IResultBackend Backend => _backend;

    internal IResultBackend ReadBackend => _backend;

    /// <summary>The app that sent it (to revoke it), when known.</summary>
    internal CeleriacApp? App { get; set; }

    /// <summary>The result of the step before this one in a chain (Celery's <c>parent</c>), when this handle knows it.</summary>
    public AsyncResult? Parent { get; internal set; }

    /// <summary>
    /// The tasks it sent while it ran, and its callbacks, as its stored result lists them (Celery's <c>children</c>);
    /// empty until a document with children is read.
    /// </summary>
    public IReadOnlyList<AsyncResult> Children => _meta is { } m ? CanvasResults.FromTuples(m.Children.Span, _backend, App) : [];

    /// <summary>The last read state; PENDING before any read or when nothing is stored.</summary>
    public string State => _meta?.Status ?? TaskStates.Pending;

    /// <summary>
    /// The last read state as a value to switch on (<see cref="Celeriac.TaskState.Custom"/> for a state of the task's
    /// own, whose name is in <see cref="State"/>).
    /// </summary>
    public TaskState TaskState => TaskStates.Parse(State);

    /// <summary>Whether the last read state is final.</summary>
    public virtual bool Ready => TaskStates.IsReady(State);

    /// <summary>Whether the last read state is SUCCESS.</summary>
    public virtual bool Successful => State == TaskStates.Success;

    /// <summary>Whether the last read state is FAILURE.</summary>
    public virtual bool Failed => State == TaskStates.Failure;

    /// <summary>The last read traceback, for a failure.</summary>
    public string? Traceback => _meta?.Traceback;

    /// <summary>
    /// The value stored with the last read state (Celery's <c>info</c>): the meta of a custom state such as PROGRESS,
    /// the return value, or the exception document; <see langword="null"/> while nothing is stored.
    /// </summary>
    public JsonElement? Info
    {
        get
        {
            if (_meta is not { } meta)
            {
                return null;
            }

            using JsonDocument doc = JsonDocument.Parse(meta.Result);
            return doc.RootElement.Clone();
        }
    }

    /// <summary>The last read document, or <see langword="null"/>.</summary>
    public TaskResultMeta? Meta => _meta;

    /// <summary>Reads the stored document again.</summary>
    public async Task<TaskResultMeta?> RefreshAsync(CancellationToken ct = default)
    {
        _meta = await _backend.GetAsync(Id, ct).ConfigureAwait(false);
        return _meta;
    }

    /// <summary>Reads the current state.</summary>
    public async Task<string> GetStateAsync(CancellationToken ct = default)
    {
        await RefreshAsync(ct).ConfigureAwait(false);
        return State;
    }

    /// <summary>
    /// Waits for the result and returns it as <typeparamref name="T"/>. Throws <see cref="TaskFailedException"/>
    /// (with the remote type and message) when the task failed or was revoked, and <see cref="TimeoutException"/>
    /// when it is not ready within <paramref name="timeout"/>.
    /// </summary>
    public async Task<T?> GetAsync<T>(TimeSpan? timeout = null, CancellationToken ct = default)
    {
        TaskResultMeta meta = await WaitAsync(timeout, ct).ConfigureAwait(false);
        if (meta.Status != TaskStates.Success)
        {
            throw new TaskFailedException(Id, meta.Status, meta.Exception ?? new ExceptionInfo("Exception", meta.Status, null), meta.Traceback);
        }

        return ReadValue<T>(meta, Id, Name);
    }

    /// <summary>A stored success's value as <typeparamref name="T"/>; a value of another shape is a <see cref="ResultTypeException"/> that says what came.</summary>
    internal static T? ReadValue<T>(TaskResultMeta meta, string id, string? name)
    {
        try
        {
            return JsonSerializer.Deserialize(meta.Result.Span, (System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)CeleryJson.Options.GetTypeInfo(typeof(T)));
        }
        catch (JsonException ex)
        {
            throw new ResultTypeException(id, meta.Extended?.Name ?? name, typeof(T), System.Text.Encoding.UTF8.GetString(meta.Result.Span), ex);
        }
    }

    /// <summary>Waits for the result and returns its JSON value.</summary>
    public Task<JsonElement> GetAsync(TimeSpan? timeout = null, CancellationToken ct = default) => GetAsync<JsonElement>(timeout, ct);

    /// <summary>Waits until the state is final and returns the document, whatever the state.</summary>
    public virtual async Task<TaskResultMeta> WaitAsync(TimeSpan? timeout = null, CancellationToken ct = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (timeout is { } t)
        {
            cts.CancelAfter(t);
        }

        try
        {
            _meta = await _backend.WaitAsync(Id, cts.Token).ConfigureAwait(false);
            return _meta;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"The result of task {Id} was not ready within {timeout}.");
        }
    }

    /// <summary>Deletes the stored result.</summary>
    public async Task ForgetAsync(CancellationToken ct = default)
    {
        await _backend.ForgetAsync(Id, ct).ConfigureAwait(false);
        _meta = null;
    }

    /// <summary>Revokes the task (see <see cref="CeleriacApp.RevokeAsync(IEnumerable{string}, bool, CancellationToken)"/>).</summary>
    public virtual Task RevokeAsync(bool terminate = false, CancellationToken ct = default) =>
        (App ?? throw new InvalidOperationException("this result was not made by an app: revoke it with CeleriacApp.RevokeAsync")).RevokeAsync([Id], terminate, ct);

    /// <summary>
    /// Waits for this task and every task below it (its children, as stored, and theirs), and returns each with its
    /// document, parents first (Celery's <c>collect()</c>). Bounded: at most <paramref name="maxNodes"/> results.
    /// </summary>
    public async Task<IReadOnlyList<(AsyncResult Result, TaskResultMeta Meta)>> CollectAsync(TimeSpan? timeout = null, int maxNodes = 10_000, CancellationToken ct = default)
    {
        var found = new List<(AsyncResult, TaskResultMeta)>();
        var pending = new Stack<AsyncResult>();
        pending.Push(this);
        while (pending.Count > 0 && found.Count < maxNodes)
        {
            AsyncResult node = pending.Pop();
            TaskResultMeta meta = await node.WaitAsync(timeout, ct).ConfigureAwait(false);
            found.Add((node, meta));
            IReadOnlyList<AsyncResult> children = node is GroupResult g ? g.Results : node.Children;
            for (int i = children.Count - 1; i >= 0; i--)
            {
                pending.Push(children[i]);
            }
        }

        return found;
    }

    /// <summary>Follows the stored children down to the last task of the tree and returns it once ready (Celery's <c>get_leaf()</c>).</summary>
    public async Task<AsyncResult> GetLeafAsync(TimeSpan? timeout = null, CancellationToken ct = default)
    {
        AsyncResult node = this;
        for (int depth = 0; depth < 10_000; depth++)
        {
            await node.WaitAsync(timeout, ct).ConfigureAwait(false);
            IReadOnlyList<AsyncResult> children = node.Children;
            if (children.Count == 0)
            {
                return node;
            }

            node = children[^1];
        }

        return node;
    }

    /// <summary>This result as Celery's <c>as_tuple()</c>: <c>[[id, parent], null]</c>.</summary>
    internal virtual System.Text.Json.Nodes.JsonNode AsTuple() =>
        new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonArray(Id, Parent?.AsTuple()), null);

    /// <inheritdoc />
    public override string ToString() => Id;
}
