using System.Text.Json.Nodes;

namespace Celeriac;

/// <summary>Builds Celery's canvas shapes: <c>Canvas.Chain(a, b)</c>, <c>Canvas.Group(...)</c>, <c>Canvas.Chord(header, body)</c>, ...</summary>
public static class Canvas
{
    /// <summary>Each task's result is the first argument of the other (Celery's <c>chain</c>).</summary>
    public static Chain Chain(params IEnumerable<Signature> tasks) => new(tasks);

    /// <summary>The tasks run in parallel (Celery's <c>group</c>).</summary>
    public static Group Group(params IEnumerable<Signature> tasks) => new(tasks);

    /// <summary>The body runs once with the list of the header's results, in order (Celery's <c>chord</c>).</summary>
    public static Chord Chord(IEnumerable<Signature> header, Signature body) => new(new Group(header), body);

    /// <summary>The body runs once with the list of the group's results, in order.</summary>
    public static Chord Chord(Group header, Signature body) => new(header, body);

    /// <summary>Splits <paramref name="items"/> (each a list of arguments) into parts of <paramref name="n"/>, one task per part (Celery's <c>chunks</c>).</summary>
    public static Chunks Chunks(Signature task, IEnumerable<object?> items, int n) => new(task, [.. items.Select(Signature.ToNode)], n);

    /// <summary>One task that calls <paramref name="task"/> with each item in turn (Celery's <c>map</c>).</summary>
    public static XMap Map(Signature task, IEnumerable<object?> items) => new(task, [.. items.Select(Signature.ToNode)]);

    /// <summary>One task that calls <paramref name="task"/> with each item's elements as arguments (Celery's <c>starmap</c>).</summary>
    public static XStarMap Starmap(Signature task, IEnumerable<object?> items) => new(task, [.. items.Select(Signature.ToNode)]);
}

/// <summary>A chain (Celery's <c>celery.chain</c>): each task's result is the first argument of the other.</summary>
public sealed class Chain : Signature
{
    /// <summary>Creates a chain of tasks (a chain given as a step is unrolled into this one when sent).</summary>
    public Chain(IEnumerable<Signature> tasks)
        : base("celery.chain")
    {
        TaskList = [.. tasks];
        App = Tasks.Select(t => t.App).FirstOrDefault(a => a is not null);
    }

    /// <inheritdoc />
    protected override JsonObject KwargsJson() => new() { ["tasks"] = new JsonArray([.. Tasks.Select(t => (JsonNode)t.ToJson())]) };

    /// <summary>The steps, in order.</summary>
    public IReadOnlyList<Signature> Tasks => TaskList;

    internal List<Signature> TaskList { get; }

    /// <inheritdoc />
    public override string? SubtaskType => "chain";

    /// <inheritdoc />
    protected override Signature CloneCore() => new Chain(Tasks.Select(t => t.Clone())).WithData(this);

    /// <summary>The steps as clones, each given this chain's error callbacks (Celery's <c>unchain_tasks</c>).</summary>
    public IReadOnlyList<Signature> UnchainTasks()
    {
        List<Signature> tasks = [.. Tasks.Select(t => t.Clone())];
        foreach (Signature errback in ErrorLinks)
        {
            foreach (Signature t in tasks)
            {
                t.LinkError(errback);
            }
        }

        return tasks;
    }

    /// <inheritdoc />
    public override Signature Pipe(Signature other)
    {
        ArgumentNullException.ThrowIfNull(other);
        IReadOnlyList<Signature> tasks = UnchainTasks();
        if (other is Chain c)
        {
            return new Chain([.. tasks, .. c.UnchainTasks()]) { App = App ?? other.App };
        }

        if (other is not Group && tasks.Count > 0 && tasks[^1] is Group last)
        {
            // As Celery: a chain ending in a group, followed by a task, ends in a chord.
            return new Chain([.. tasks.Take(tasks.Count - 1), new Chord(last, other.Clone())]) { App = App ?? other.App };
        }

        if (other is not Group && tasks.Count > 0 && tasks[^1] is Chord chord)
        {
            return new Chain([.. tasks.Take(tasks.Count - 1), new Chord(chord.Header, chord.Body is null ? other.Clone() : chord.Body | other).WithData(chord)]) { App = App ?? other.App };
        }

        return new Chain([.. tasks, other.Clone()]) { App = App ?? other.App };
    }
}

/// <summary>A group (Celery's <c>celery.group</c>): the tasks run in parallel; its result is a <see cref="GroupResult"/>.</summary>
public sealed class Group : Signature
{
    /// <summary>Creates a group (a group given as a member is unrolled into this one when sent).</summary>
    public Group(IEnumerable<Signature> tasks)
        : base("celery.group")
    {
        TaskList = [.. tasks];
        App = Tasks.Select(t => t.App).FirstOrDefault(a => a is not null);
    }

    /// <inheritdoc />
    protected override JsonObject KwargsJson() => new() { ["tasks"] = new JsonArray([.. Tasks.Select(t => (JsonNode)t.ToJson())]) };

    /// <summary>The members, in order.</summary>
    public IReadOnlyList<Signature> Tasks => TaskList;

    internal List<Signature> TaskList { get; }

    /// <inheritdoc />
    public override string? SubtaskType => "group";

    /// <inheritdoc />
    protected override Signature CloneCore() => new Group(Tasks.Select(t => t.Clone())).WithData(this);

    /// <inheritdoc />
    public override Signature SetImmutable(bool immutable = true)
    {
        foreach (Signature t in Tasks)
        {
            t.SetImmutable(immutable);
        }

        return this;
    }

    /// <summary>A group cannot take a success callback: as Celery, use a chord (<c>group | body</c>).</summary>
    public override Signature Link(Signature callback) => throw new InvalidOperationException("Cannot add link to group: use a chord");

    /// <summary>Adds the error callback to every member, as Celery does.</summary>
    public override Signature LinkError(Signature errback)
    {
        foreach (Signature t in Tasks)
        {
            t.LinkError(errback);
        }

        return errback;
    }

    /// <inheritdoc />
    public override Signature Pipe(Signature other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new Chord(this, other.Clone()) { App = App ?? other.App };
    }
}

/// <summary>A chord (Celery's <c>celery.chord</c>): the body runs once with the list of the header's results, in order.</summary>
public sealed class Chord : Signature
{
    /// <summary>Creates a chord of a header group and a body.</summary>
    public Chord(Group header, Signature? body)
        : base("celery.chord")
    {
        ArgumentNullException.ThrowIfNull(header);
        Header = header;
        Body = body;
        App = header.App ?? body?.App;
    }

    /// <inheritdoc />
    protected override JsonObject KwargsJson() => new() { ["header"] = Header.ToJson(), ["body"] = Body?.ToJson(), ["kwargs"] = new JsonObject() };

    /// <summary>The tasks whose results the body waits for.</summary>
    public Group Header { get; }

    /// <summary>The task called with the header's results.</summary>
    public Signature? Body { get; }

    /// <inheritdoc />
    public override string? SubtaskType => "chord";

    /// <inheritdoc />
    protected override Signature CloneCore() => new Chord((Group)Header.Clone(), Body?.Clone()).WithData(this);

    /// <summary>Links the callback to the body, as Celery does.</summary>
    public override Signature Link(Signature callback)
    {
        (Body ?? throw new InvalidOperationException("the chord has no body")).Link(callback);
        return callback;
    }

    /// <summary>Links the error callback to the body, as Celery does.</summary>
    public override Signature LinkError(Signature errback)
    {
        (Body ?? throw new InvalidOperationException("the chord has no body")).LinkError(errback);
        return errback;
    }

    /// <inheritdoc />
    public override Signature SetImmutable(bool immutable = true)
    {
        Header.SetImmutable(immutable);
        return this;
    }

    /// <inheritdoc />
    public override Signature Pipe(Signature other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return other is Group or Chain || Body is null
            ? base.Pipe(other)
            : new Chord(Header, Body | other).WithData(this);
    }
}

/// <summary>Celery's <c>chunks</c>: the items split into parts of <see cref="Size"/>, each part one <c>celery.starmap</c> task, as a group.</summary>
public sealed class Chunks : Signature
{
    /// <summary>Creates chunks of a task over items (each a list of arguments).</summary>
    public Chunks(Signature task, IReadOnlyList<JsonNode?> items, int n)
        : base("celery.chunks", immutable: true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        TaskSignature = task;
        Items = items;
        Size = n;
        App = task.App;
        Kwargs["task"] = task.ToJson();
        Kwargs["it"] = new JsonArray([.. items.Select(i => i?.DeepClone())]);
        Kwargs["n"] = n;
    }

    /// <summary>The task called for each item.</summary>
    public Signature TaskSignature { get; }

    /// <summary>The items, each a list of arguments.</summary>
    public IReadOnlyList<JsonNode?> Items { get; }

    /// <summary>How many items a part has.</summary>
    public int Size { get; }

    /// <inheritdoc />
    public override string? SubtaskType => "chunks";

    /// <inheritdoc />
    protected override Signature CloneCore() => new Chunks(TaskSignature.Clone(), Items, Size).WithData(this);

    /// <summary>The group this becomes: one <c>celery.starmap</c> task per part (Celery's <c>chunks.group()</c>).</summary>
    public Group ToGroup() => new(Items.Chunk(Size).Select(part => (Signature)new XStarMap(TaskSignature, part) { App = App })) { App = App };
}

/// <summary>What Celery's <c>xmap</c> and <c>xstarmap</c> share (its <c>_basemap</c>): one task that calls another for each item.</summary>
public abstract class MapSignature : Signature
{
    /// <summary>Creates a map of <paramref name="task"/> over <paramref name="items"/>, sent as the task named <paramref name="name"/>.</summary>
    protected MapSignature(string name, Signature task, IReadOnlyList<JsonNode?> items)
        : base(name, immutable: true)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(items);
        TaskSignature = task;
        Items = items;
        App = task.App;
        Kwargs["task"] = task.ToJson();
        Kwargs["it"] = new JsonArray([.. items.Select(i => i?.DeepClone())]);
    }

    /// <summary>The task called for each item.</summary>
    public Signature TaskSignature { get; }

    /// <summary>The items (for a starmap, each a list of arguments).</summary>
    public IReadOnlyList<JsonNode?> Items { get; }
}

/// <summary>Celery's <c>xmap</c>: one <c>celery.map</c> task calling the task with each item in turn.</summary>
public sealed class XMap(Signature task, IReadOnlyList<JsonNode?> items) : MapSignature("celery.map", task, items)
{
    /// <inheritdoc />
    public override string? SubtaskType => "xmap";

    /// <inheritdoc />
    protected override Signature CloneCore() => new XMap(TaskSignature.Clone(), Items).WithData(this);
}

/// <summary>Celery's <c>xstarmap</c>: one <c>celery.starmap</c> task calling the task with each item's elements as arguments.</summary>
public sealed class XStarMap(Signature task, IReadOnlyList<JsonNode?> items) : MapSignature("celery.starmap", task, items)
{
    /// <inheritdoc />
    public override string? SubtaskType => "xstarmap";

    /// <inheritdoc />
    protected override Signature CloneCore() => new XStarMap(TaskSignature.Clone(), Items).WithData(this);
}

internal static class SignatureCopy
{
    /// <summary>Copies a shape's own options, partial arguments and flags onto its rebuilt copy.</summary>
    public static T WithData<T>(this T copy, Signature from)
        where T : Signature
    {
        copy.CopyDataFrom(from);
        return copy;
    }
}
