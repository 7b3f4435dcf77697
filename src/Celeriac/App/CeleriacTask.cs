namespace Celeriac;

/// <summary>A registered task: call it with <c>DelayAsync</c> or <see cref="ApplyAsync"/>.</summary>
public sealed class CeleriacTask
{
    /// <summary>
    /// A handle on a task by name in <paramref name="app"/> (as <see cref="CeleriacApp.Signature"/>): it sends calls; it
    /// runs nothing here. Constructible in a user's tests.
    /// </summary>
    public CeleriacTask(CeleriacApp app, string name, TaskOptions? options = null)
        : this(app ?? throw new ArgumentNullException(nameof(app)), name, options ?? new TaskOptions(), null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
    }

    internal CeleriacTask(CeleriacApp app, string name, TaskOptions options, TaskInvoker? invoker)
    {
        App = app;
        Name = name;
        Options = options;
        Invoker = invoker;
    }

    /// <summary>The app it belongs to.</summary>
    public CeleriacApp App { get; }

    /// <summary>The task name.</summary>
    public string Name { get; }

    /// <summary>How it runs.</summary>
    public TaskOptions Options { get; }

    /// <summary>The code that runs it, or <see langword="null"/> for a task that only has a name here.</summary>
    internal TaskInvoker? Invoker { get; }

    /// <summary>
    /// Sends a call with positional arguments (Celery's <c>delay</c>). To pass a <see cref="CancellationToken"/>, use the
    /// overloads that end with one (<c>DelayAsync(2, 3, ct)</c>) or <see cref="ApplyAsync"/>: a token among
    /// <paramref name="args"/> is refused, not sent as an argument.
    /// </summary>
    public Task<AsyncResult> DelayAsync(params object?[] args) =>
        App.SendTaskAsync(Name, RefuseTokens(args, "ApplyAsync(args, ct: token), or DelayAsync with at most four arguments and the token last"), null, null, CancellationToken.None);

    /// <summary>
    /// The arguments of a <c>params</c> call, refusing a <see cref="CancellationToken"/> among them: it would be sent as
    /// a task argument (and fail to encode) while the caller believes the send can be cancelled.
    /// </summary>
    internal static object?[] RefuseTokens(object?[] args, string instead)
    {
        ArgumentNullException.ThrowIfNull(args);
        foreach (object? arg in args)
        {
            if (arg is CancellationToken)
            {
                throw new ArgumentException($"A CancellationToken is not a task argument: to pass one, call {instead}.", nameof(args));
            }
        }

        return args;
    }

    /// <summary>Sends a call with no arguments (Celery's <c>delay()</c>).</summary>
    public Task<AsyncResult> DelayAsync(CancellationToken ct) => App.SendTaskAsync(Name, [], null, null, ct);

    /// <summary>Sends a call with one positional argument.</summary>
    public Task<AsyncResult> DelayAsync(object? arg0, CancellationToken ct) => App.SendTaskAsync(Name, [arg0], null, null, ct);

    /// <summary>Sends a call with two positional arguments.</summary>
    public Task<AsyncResult> DelayAsync(object? arg0, object? arg1, CancellationToken ct) => App.SendTaskAsync(Name, [arg0, arg1], null, null, ct);

    /// <summary>Sends a call with three positional arguments.</summary>
    public Task<AsyncResult> DelayAsync(object? arg0, object? arg1, object? arg2, CancellationToken ct) => App.SendTaskAsync(Name, [arg0, arg1, arg2], null, null, ct);

    /// <summary>Sends a call with four positional arguments.</summary>
    public Task<AsyncResult> DelayAsync(object? arg0, object? arg1, object? arg2, object? arg3, CancellationToken ct) => App.SendTaskAsync(Name, [arg0, arg1, arg2, arg3], null, null, ct);

    /// <summary>Sends a call with arguments and options (Celery's <c>apply_async</c>).</summary>
    public Task<AsyncResult> ApplyAsync(IReadOnlyList<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null, ApplyOptions? options = null, CancellationToken ct = default) =>
        App.SendTaskAsync(Name, args, kwargs, options, ct);

    /// <summary>A signature of a call with positional arguments (Celery's <c>add.s(2, 2)</c>): a parent's result goes before them.</summary>
    public Signature S(params object?[] args) => S(args, null);

    /// <summary>A signature of a call with positional and keyword arguments.</summary>
    public Signature S(IEnumerable<object?>? args, IReadOnlyDictionary<string, object?>? kwargs)
    {
        var sig = new Signature(Name) { App = App };
        sig.PrependArgs(args);
        if (kwargs is not null)
        {
            foreach (KeyValuePair<string, object?> kv in kwargs)
            {
                sig.Kwargs[kv.Key] = Signature.ToNode(kv.Value);
            }
        }

        return sig;
    }

    /// <summary>An immutable signature (Celery's <c>add.si(2, 2)</c>): it ignores a parent's result.</summary>
    public Signature Si(params object?[] args) => S(args).SetImmutable();

    /// <summary>Runs the task's code in this process (Celery's <c>task(*args)</c>, used by <c>celery.map</c> and error callbacks).</summary>
    internal bool CanRunHere => Invoker is not null;

    /// <inheritdoc />
    public override string ToString() => Name;
}
