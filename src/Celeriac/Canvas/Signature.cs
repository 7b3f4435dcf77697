using System.Text.Json;
using System.Text.Json.Nodes;
using Celeriac.Protocol;

namespace Celeriac;

/// <summary>
/// A task call that has not been sent yet (Celery's <c>Signature</c>): a task name, arguments and options, written on
/// the wire exactly as Celery writes it: <c>{"task", "args", "kwargs", "options", "subtask_type", "immutable",
/// "chord_size"}</c>. Signatures compose: <c>add.S(2, 2) | mul.S(4)</c> is a chain, <see cref="Canvas"/> builds groups
/// and chords. Send one with <c>ApplyAsync</c> or <c>DelayAsync</c> (the app's extension methods).
/// </summary>
[System.Text.Json.Serialization.JsonConverter(typeof(SignatureJsonConverter))]
public class Signature
{
    /// <summary>Creates a signature of a task call.</summary>
    public Signature(string task, JsonArray? args = null, JsonObject? kwargs = null, JsonObject? options = null, bool immutable = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(task);
        Task = task;
        Args = args ?? [];
        Kwargs = kwargs ?? [];
        Options = options ?? [];
        Immutable = immutable;
    }

    /// <summary>The task name (<c>celery.chain</c>, <c>celery.group</c>, <c>celery.chord</c>, ... for the shapes).</summary>
    public string Task { get; }

    /// <summary>The positional arguments.</summary>
    public JsonArray Args { get; private set; }

    /// <summary>The keyword arguments.</summary>
    public JsonObject Kwargs { get; private set; }

    /// <summary>The execution options (<c>queue</c>, <c>countdown</c>, <c>link</c>, <c>task_id</c>, ...), as Celery names them.</summary>
    public JsonObject Options { get; private set; }

    /// <summary>Celery's <c>subtask_type</c>: <see langword="null"/> for a task call, else <c>chain</c>, <c>group</c>, <c>chord</c>, <c>chunks</c>, <c>xmap</c>, <c>xstarmap</c>.</summary>
    public virtual string? SubtaskType => null;

    /// <summary>Whether the signature ignores the arguments a parent passes it (Celery's <c>si()</c>).</summary>
    public bool Immutable { get; set; }

    /// <summary>How many results a chord waits for when this is its body (Celery 5.3's <c>chord_size</c>). <value>null</value></summary>
    public int? ChordSize { get; set; }

    /// <summary>The app this signature is sent with (set by <c>task.S(...)</c>); <see langword="null"/> when read from a message.</summary>
    public ICanvasApp? App { get; set; }

    /// <summary>The task id, once the signature is frozen or given one (<c>options.task_id</c>).</summary>
    public string? Id
    {
        get => Options.TryGetPropertyValue("task_id", out JsonNode? id) ? (string?)id : null;
        set => Options["task_id"] = value;
    }

    /// <summary>A copy with <paramref name="args"/> put before its own and <paramref name="kwargs"/> merged into its own (ignored when <see cref="Immutable"/>); Celery's <c>clone</c>/<c>partial</c>.</summary>
    public Signature Clone(IEnumerable<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null)
    {
        Signature copy = CloneCore();
        copy.App = App;
        copy.ChordSize = ChordSize;
        if (!Immutable)
        {
            copy.PrependArgs(args);
            if (kwargs is not null)
            {
                foreach (KeyValuePair<string, object?> kv in kwargs)
                {
                    copy.Kwargs[kv.Key] = ToNode(kv.Value);
                }
            }
        }

        return copy;
    }

    /// <summary>Celery's <c>partial</c>: the same as <see cref="Clone"/>.</summary>
    public Signature Partial(params object?[] args) => Clone(args);

    /// <summary>Makes a deep copy of this signature's data, of the same shape.</summary>
    protected virtual Signature CloneCore() => new(Task, (JsonArray)Args.DeepClone(), (JsonObject)Kwargs.DeepClone(), (JsonObject)Options.DeepClone(), Immutable);

    /// <summary>Puts arguments before the signature's own (a parent's result, a chord's results); a no-op when immutable.</summary>
    internal void PrependArgs(IEnumerable<object?>? args)
    {
        if (args is null || Immutable)
        {
            return;
        }

        int i = 0;
        foreach (object? a in args)
        {
            Args.Insert(i++, ToNode(a));
        }
    }

    /// <summary>Sets execution options (Celery's <c>set(**options)</c>); returns this signature.</summary>
    public Signature Set(string option, object? value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(option);
        Options[option] = ToNode(value);
        return this;
    }

    /// <summary>Sends the task to this queue.</summary>
    public Signature SetQueue(string queue) => Set("queue", queue);

    /// <summary>Runs the task no sooner than this long after it is sent.</summary>
    public Signature SetCountdown(TimeSpan countdown) => Set("countdown", countdown.TotalSeconds);

    /// <summary>Makes the signature ignore arguments passed to it by a parent (Celery's <c>set_immutable</c>); returns this.</summary>
    public virtual Signature SetImmutable(bool immutable = true)
    {
        Immutable = immutable;
        return this;
    }

    /// <summary>Adds a signature to call with this task's result when it succeeds (Celery's <c>link</c>); returns <paramref name="callback"/>.</summary>
    public virtual Signature Link(Signature callback)
    {
        AppendToList("link", callback);
        return callback;
    }

    /// <summary>Adds a signature to call when this task fails (Celery's <c>link_error</c>); returns <paramref name="errback"/>.</summary>
    public virtual Signature LinkError(Signature errback)
    {
        AppendToList("link_error", errback);
        return errback;
    }

    /// <summary>Adds an error callback and returns this signature (Celery's <c>on_error</c>).</summary>
    public Signature OnError(Signature errback)
    {
        LinkError(errback);
        return this;
    }

    /// <summary>The success callbacks (<c>options.link</c>).</summary>
    public IReadOnlyList<Signature> Links => ListOption("link");

    /// <summary>The error callbacks (<c>options.link_error</c>).</summary>
    public IReadOnlyList<Signature> ErrorLinks => ListOption("link_error");

    internal void AppendToList(string option, Signature sig)
    {
        ArgumentNullException.ThrowIfNull(sig);
        JsonArray list = Options[option] as JsonArray ?? [];
        if (Options[option] is JsonObject single)
        {
            list.Add(single.DeepClone());
        }

        Options[option] = list;
        JsonObject json = sig.ToJson();
        if (!list.Any(n => JsonNode.DeepEquals(n, json)))
        {
            list.Add((JsonNode)json);
        }
    }

    private List<Signature> ListOption(string option) => Options[option] switch
    {
        JsonArray list => [.. list.Where(n => n is JsonObject).Select(n => FromJson(n!))],
        JsonObject one => [FromJson(one)],
        _ => [],
    };

    /// <summary>Chains two signatures: <c>a | b</c> runs <c>b</c> with <c>a</c>'s result (a group followed by a task is a chord).</summary>
    public static Signature operator |(Signature left, Signature right)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        return left.Pipe(right);
    }

    /// <summary>The same as <c>this | other</c>.</summary>
    public virtual Signature Pipe(Signature other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return other is Chain c
            ? new Chain([Clone(), .. c.UnchainTasks()]) { App = App ?? other.App }
            : new Chain([Clone(), other.Clone()]) { App = App ?? other.App };
    }

    /// <summary>Writes the signature as Celery's dict.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["task"] = Task,
            ["args"] = Args.DeepClone(),
            ["kwargs"] = KwargsJson().DeepClone(),
            ["options"] = Options.DeepClone(),
            ["subtask_type"] = SubtaskType,
            ["immutable"] = Immutable,
        };
        if (ChordSize is { } size)
        {
            o["chord_size"] = size;
        }

        return o;
    }

    /// <summary>The keyword arguments as written: a shape writes its members there.</summary>
    protected virtual JsonObject KwargsJson() => Kwargs;

    /// <summary>Copies options, partial arguments and flags from <paramref name="from"/> (a shape's rebuilt copy).</summary>
    internal void CopyDataFrom(Signature from)
    {
        Options = (JsonObject)from.Options.DeepClone();
        Args = (JsonArray)from.Args.DeepClone();
        Immutable = from.Immutable;
        ChordSize = from.ChordSize;
        App ??= from.App;
    }

    /// <summary>The signature as Celery's dict, in JSON text.</summary>
    public override string ToString() => ToJson().ToJsonString();

    /// <summary>Reads a signature as Celery writes it (any shape: chains, groups, chords, chunks, maps).</summary>
    public static Signature FromJson(JsonNode node)
    {
        if (node is not JsonObject o || o["task"] is not JsonValue taskValue || !taskValue.TryGetValue(out string? task))
        {
            throw new JsonException("not a Celery signature (a dict with a 'task'): " + node?.ToJsonString());
        }

        JsonArray args = o["args"] as JsonArray ?? [];
        JsonObject kwargs = o["kwargs"] as JsonObject ?? [];
        JsonObject options = o["options"] as JsonObject ?? [];
        bool immutable = o["immutable"] is JsonValue im && im.TryGetValue(out bool b) && b;
        int? chordSize = o["chord_size"] is JsonValue cs && cs.TryGetValue(out int n) ? n : null;
        string? type = o["subtask_type"] is JsonValue t && t.TryGetValue(out string? s) ? s : null;
        Signature sig = type switch
        {
            "chain" => new Chain(Signatures(kwargs["tasks"])),
            "group" => new Group(Signatures(kwargs["tasks"])),
            "chord" => new Chord(
                kwargs["header"] is JsonObject h && h["subtask_type"]?.GetValue<string>() == "group" ? (Group)FromJson(h) : new Group(Signatures(kwargs["header"])),
                kwargs["body"] is JsonObject body ? FromJson(body) : null),
            "chunks" => new Chunks(FromJson(kwargs["task"] ?? throw new JsonException("chunks without a task")), ItemsOf(kwargs["it"]), kwargs["n"]?.GetValue<int>() ?? 1),
            "xmap" => new XMap(FromJson(kwargs["task"] ?? throw new JsonException("xmap without a task")), ItemsOf(kwargs["it"])),
            "xstarmap" => new XStarMap(FromJson(kwargs["task"] ?? throw new JsonException("xstarmap without a task")), ItemsOf(kwargs["it"])),
            null => new Signature(task!, (JsonArray)args.DeepClone(), (JsonObject)kwargs.DeepClone(), null, immutable),
            _ => throw new JsonException($"unknown subtask_type '{type}'"),
        };
        sig.Options = (JsonObject)options.DeepClone();
        sig.Immutable = immutable;
        sig.ChordSize = chordSize;
        if (type is not null && args.Count > 0)
        {
            sig.Args = (JsonArray)args.DeepClone();
        }

        return sig;
    }

    /// <summary>Reads a signature from a JSON element.</summary>
    public static Signature FromJson(JsonElement element) => FromJson(JsonNode.Parse(element.GetRawText()) ?? throw new JsonException("a signature cannot be null"));

    private static List<Signature> Signatures(JsonNode? tasks) =>
        tasks is JsonArray list ? [.. list.Where(n => n is not null).Select(n => FromJson(n!))] : [];

    private static List<JsonNode?> ItemsOf(JsonNode? it) => it is JsonArray list ? [.. list.Select(n => n?.DeepClone())] : [];

    /// <summary>Converts a value to JSON as task arguments are written (a whole double keeps its <c>.0</c>).</summary>
    public static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        JsonNode node => node.Parent is null ? node : node.DeepClone(),
        Signature sig => sig.ToJson(),
        JsonElement e => JsonNode.Parse(e.GetRawText()),
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        _ => JsonNode.Parse(JsonBuffers.Write(value, static (w, v) => JsonValues.Write(w, v))),
    };

    /// <summary>A signature's argument or option as a JSON element.</summary>
    internal static JsonElement ToElement(JsonNode? node) => JsonSerializer.SerializeToElement(node, CanvasJson.Default.JsonNode);
}

/// <summary>Writes a signature as Celery's dict and reads one back, so that signatures travel as task arguments and results.</summary>
public sealed class SignatureJsonConverter : System.Text.Json.Serialization.JsonConverter<Signature>
{
    /// <inheritdoc />
    public override bool CanConvert(Type typeToConvert) => typeof(Signature).IsAssignableFrom(typeToConvert);

    /// <inheritdoc />
    public override Signature Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        Signature.FromJson(JsonNode.Parse(ref reader) ?? throw new JsonException("a signature cannot be null"));

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, Signature value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(value);
        value.ToJson().WriteTo(writer);
    }
}

/// <summary>The app a signature is sent with; <see cref="CeleriacApp"/> is one.</summary>
public interface ICanvasApp
{
}

[System.Text.Json.Serialization.JsonSerializable(typeof(JsonNode))]
internal sealed partial class CanvasJson : System.Text.Json.Serialization.JsonSerializerContext;
