using System.Collections;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Celeriac.Protocol;

namespace Celeriac;

/// <summary>
/// The code that runs a task: binds a message's JSON arguments to the task's parameters and calls it. The source
/// generator writes one per <see cref="CeleriacTaskAttribute"/> method (no reflection on the call path); delegates and
/// methods it did not see run through a reflection-based one.
/// </summary>
public abstract class TaskInvoker
{
    /// <summary>Creates the invoker of a task.</summary>
    protected TaskInvoker(string taskName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(taskName);
        TaskName = taskName;
    }

    /// <summary>The task's name, as error messages show it (<c>tasks.add() missing required argument 'y'</c>).</summary>
    public string TaskName { get; }

    /// <summary>Whether a run needs a DI scope (an instance method or an injected parameter).</summary>
    public abstract bool NeedsServices { get; }

    /// <summary>The parameters bound from the message's arguments, in order (injected ones left out).</summary>
    public abstract IReadOnlyList<TaskParameter> Parameters { get; }

    /// <summary>
    /// The class an instance task runs on, built from DI for each run (<see langword="null"/> for a static method or a
    /// delegate): a hosted worker checks at start that DI can build it.
    /// </summary>
    public virtual Type? TargetType => null;

    /// <summary>The parameters filled from DI (checked at a hosted worker's start as <see cref="TargetType"/> is).</summary>
    public virtual IReadOnlyList<TaskParameter> ServiceParameters => [];

    /// <summary>Binds and calls. Throws <see cref="TaskArgumentException"/> for arguments that do not fit.</summary>
    public abstract ValueTask<object?> InvokeAsync(TaskMessage message, TaskContext context, IServiceProvider? services);

    internal IEnumerable<(string Name, Type Type, bool Optional)> JsonParameters => Parameters.Select(p => (p.Name, p.Type, p.Optional));
}

/// <summary>A task parameter bound from the message's arguments.</summary>
/// <param name="Name">The parameter's name (the keyword argument that binds it).</param>
/// <param name="Type">Its type.</param>
/// <param name="Optional">Whether it has a default.</param>
public sealed record TaskParameter(string Name, Type Type, bool Optional);

/// <summary>
/// What generated invokers call to bind JSON arguments; the reflection invoker shares its checks and messages so that
/// both paths fail alike. Not meant to be called by hand.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class TaskBinding
{
    /// <summary>Checks the counts and names of the arguments; returns how many positional arguments were given.</summary>
    public static int Check(string taskName, JsonElement args, JsonElement kwargs, string[] names, bool varArgs, bool varKwargs)
    {
        ArgumentNullException.ThrowIfNull(names);
        int given = args.GetArrayLength();
        if (given > names.Length && !varArgs)
        {
            throw new TaskArgumentException($"{taskName}() takes {names.Length} positional argument{(names.Length == 1 ? "" : "s")} but {given} were given");
        }

        foreach (JsonProperty kw in kwargs.EnumerateObject())
        {
            int index = IndexOf(names, kw);
            if (index < 0 && varKwargs)
            {
                continue;
            }

            if (index < 0)
            {
                throw new TaskArgumentException($"{taskName}() got an unexpected keyword argument '{kw.Name}'");
            }

            if (index < given)
            {
                throw new TaskArgumentException($"{taskName}() got multiple values for argument '{kw.Name}'");
            }
        }

        return given;
    }

    // A loop, not Array.FindIndex with a lambda: the closure would be one allocation per keyword argument.
    private static int IndexOf(string[] names, JsonProperty kw)
    {
        for (int i = 0; i < names.Length; i++)
        {
            if (kw.NameEquals(names[i]))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// Whether the keyword arguments as a whole are a task's one model parameter (Celery 5.5's <c>pydantic=True</c>
    /// called with the model's fields as keywords): no positional arguments and no keyword of the parameter's own name.
    /// </summary>
    public static bool KwargsAreModel(string parameterName, JsonElement args, JsonElement kwargs) =>
        args.GetArrayLength() == 0 && kwargs.ValueKind == JsonValueKind.Object && !kwargs.TryGetProperty(parameterName, out _) &&
        kwargs.EnumerateObject().Any();

    /// <summary>The argument of a parameter: positional at <paramref name="position"/>, else by name; false when neither.</summary>
    public static bool TryGet(JsonElement args, JsonElement kwargs, int given, int position, string name, out JsonElement value)
    {
        if (position < given)
        {
            value = args[position];
            return true;
        }

        return kwargs.TryGetProperty(name, out value);
    }

    /// <summary>The error of a required parameter with no argument.</summary>
    public static TaskArgumentException Missing(string taskName, string name) => new($"{taskName}() missing required argument '{name}'");

    /// <summary>The error of a JSON null for a parameter that takes none.</summary>
    public static TaskArgumentException NotNull(string taskName, string name, Type type) => new($"{taskName}() argument '{name}' must be {Describe(type)}, not null");

    /// <summary>The error of an argument of the wrong JSON type.</summary>
    public static TaskArgumentException WrongType(string taskName, string name, Type type, JsonElement e) =>
        new($"{taskName}() argument '{name}' must be {Describe(type)}, got {DescribeJson(e)}");

    /// <summary>The error of a DI service that is not registered.</summary>
    public static InvalidOperationException NoService(string taskName, string name, Type type) =>
        new($"{taskName}(): no service of type {type.Name} is registered for parameter '{name}'");

    /// <summary>An <c>int</c> argument.</summary>
    public static int ToInt32(string taskName, string name, JsonElement e) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) ? v : Deserialize<int>(taskName, name, e);

    /// <summary>A <c>long</c> argument.</summary>
    public static long ToInt64(string taskName, string name, JsonElement e) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) ? v : Deserialize<long>(taskName, name, e);

    /// <summary>A <c>double</c> argument.</summary>
    public static double ToDouble(string taskName, string name, JsonElement e) =>
        e.ValueKind == JsonValueKind.Number ? e.GetDouble() : Deserialize<double>(taskName, name, e);

    /// <summary>A <c>bool</c> argument.</summary>
    public static bool ToBoolean(string taskName, string name, JsonElement e) =>
        e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : Deserialize<bool>(taskName, name, e);

    /// <summary>A <c>string</c> argument.</summary>
    public static string? ToString(string taskName, string name, JsonElement e) =>
        e.ValueKind == JsonValueKind.String ? e.GetString() : Deserialize<string>(taskName, name, e);

    /// <summary>An <c>object</c> argument: the JSON value as Celeriac reads untyped values (numbers, strings, lists, dicts).</summary>
    public static object? ToObject(JsonElement e) => JsonValues.Parse(System.Text.Encoding.UTF8.GetBytes(e.GetRawText()));

    /// <summary>An argument of any other type, through <see cref="CeleryJson.Options"/> (source-generated metadata first).</summary>
    public static T Deserialize<T>(string taskName, string name, JsonElement e) =>
        Deserialize(taskName, name, e, (JsonTypeInfo<T>)CeleryJson.Options.GetTypeInfo(typeof(T)));

    /// <summary>An argument of any other type, through the metadata of a <see cref="JsonSerializerContext"/> of the user's.</summary>
    public static T Deserialize<T>(string taskName, string name, JsonElement e, JsonSerializerContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.GetTypeInfo(typeof(T)) is JsonTypeInfo<T> info ? Deserialize(taskName, name, e, info) : Deserialize<T>(taskName, name, e);
    }

    private static T Deserialize<T>(string taskName, string name, JsonElement e, JsonTypeInfo<T> info)
    {
        try
        {
            return e.Deserialize(info)!;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException or NotSupportedException or OverflowException)
        {
            throw WrongType(taskName, name, typeof(T), e);
        }
    }

    /// <summary>
    /// Validates a model argument with its DataAnnotations (Celery 5.5's <c>pydantic=True</c>); a failure is a
    /// <see cref="TaskValidationException"/> that names each field.
    /// </summary>
    [RequiresUnreferencedCode("DataAnnotations validation reads the model's properties by reflection.")]
    public static void Validate(string taskName, string name, object? value)
    {
        if (value is null)
        {
            return;
        }

        var results = new List<ValidationResult>();
        if (Validator.TryValidateObject(value, new ValidationContext(value), results, validateAllProperties: true))
        {
            return;
        }

        string text = string.Join("; ", results.Select(r => r.MemberNames.Any() ? $"{string.Join(", ", r.MemberNames)}: {r.ErrorMessage}" : r.ErrorMessage));
        throw new TaskValidationException($"{text}", taskName, name, [.. results.SelectMany(r => r.MemberNames).Distinct(StringComparer.Ordinal)]);
    }

    /// <summary>A provider with no services, for instance tasks run without DI.</summary>
    public static IServiceProvider NoServices { get; } = new EmptyServiceProvider();

    /// <summary>A signature of a call with positional arguments (what typed handles' <c>S</c> and <c>Si</c> return).</summary>
    public static Signature Signature(ICeleriacClient client, string taskName, object?[] args, bool immutable)
    {
        var sig = new Signature(taskName) { App = client as ICanvasApp };
        sig.PrependArgs(args);
        return immutable ? sig.SetImmutable() : sig;
    }

    /// <summary>Awaits a task's result as an object.</summary>
    public static ValueTask<object?> Box<T>(Task<T> task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.IsCompletedSuccessfully ? new ValueTask<object?>(task.Result) : Slow(task);

        static async ValueTask<object?> Slow(Task<T> t) => await t.ConfigureAwait(false);
    }

    /// <summary>Awaits a value task's result as an object.</summary>
    public static ValueTask<object?> Box<T>(ValueTask<T> task) =>
        task.IsCompletedSuccessfully ? new ValueTask<object?>(task.Result) : Slow(task);

    /// <summary>Awaits a task that returns nothing.</summary>
    public static ValueTask<object?> Box(Task task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.IsCompletedSuccessfully ? default : SlowVoid(task);
    }

    /// <summary>Awaits a value task that returns nothing.</summary>
    public static ValueTask<object?> Box(ValueTask task) => task.IsCompletedSuccessfully ? default : SlowVoid(task.AsTask());

    private static async ValueTask<object?> Slow<T>(ValueTask<T> t) => await t.ConfigureAwait(false);

    private static async ValueTask<object?> SlowVoid(Task t)
    {
        await t.ConfigureAwait(false);
        return null;
    }

    /// <summary>How an error message names a .NET type (<c>an integer (int)</c>).</summary>
    internal static string Describe(Type t)
    {
        Type inner = Nullable.GetUnderlyingType(t) ?? t;
        return Type.GetTypeCode(inner) switch
        {
            TypeCode.Int32 => "an integer (int)",
            TypeCode.Int64 => "an integer (long)",
            TypeCode.Double or TypeCode.Single or TypeCode.Decimal => "a number",
            TypeCode.String => "a string",
            TypeCode.Boolean => "a boolean",
            _ when inner.IsArray || (inner != typeof(string) && typeof(IEnumerable).IsAssignableFrom(inner) && inner.IsGenericType) => $"a list ({inner.Name})",
            _ => $"a {inner.Name}",
        };
    }

    /// <summary>How an error message shows a JSON value (<c>a string "x"</c>).</summary>
    internal static string DescribeJson(JsonElement e)
    {
        string raw = e.GetRawText();
        string shown = raw.Length > 40 ? raw[..40] + "..." : raw;
        string kind = e.ValueKind switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.Array => "a list",
            JsonValueKind.Object => "a dict",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => e.ValueKind.ToString(),
        };
        return $"{kind} {shown}";
    }

    /// <summary>Whether a parameter type is a model: a class bound from a JSON object (not a string, list or dict).</summary>
    internal static bool IsModel(Type t) =>
        t.IsClass && !t.IsAbstract && t != typeof(string) && t != typeof(object) && !typeof(IEnumerable).IsAssignableFrom(t);

    /// <summary>Runs the module initializer of an assembly, where generated code registers its tasks.</summary>
    internal static void RunModuleInitializer(Assembly assembly) => RuntimeHelpers.RunModuleConstructor(assembly.ManifestModule.ModuleHandle);
}

internal sealed class EmptyServiceProvider : IServiceProvider
{
    public object? GetService(Type serviceType) => null;
}

/// <summary>The message's arguments do not fit the task's parameters (Python's <c>TypeError</c>).</summary>
public sealed class TaskArgumentException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TaskArgumentException()
    {
    }

    /// <summary>Creates the exception with a message that names the parameter.</summary>
    public TaskArgumentException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public TaskArgumentException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
