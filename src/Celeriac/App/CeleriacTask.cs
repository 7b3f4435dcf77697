namespace Celeriac;

/// <summary>A registered task: call it with <see cref="DelayAsync"/> or <see cref="ApplyAsync"/>.</summary>
public sealed class CeleriacTask
{
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

    /// <summary>Sends a call with positional arguments (Celery's <c>delay</c>).</summary>
    public Task<AsyncResult> DelayAsync(params object?[] args) => App.SendTaskAsync(Name, args, null, null, CancellationToken.None);

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
