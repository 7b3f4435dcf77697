using System.Diagnostics.CodeAnalysis;
using System.Linq.Expressions;
using System.Reflection;
using System.Text.Json;
using Celeriac.Protocol;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac;

/// <summary>
/// Binds a message's JSON arguments to a method's parameters and calls it, found by reflection: for delegates and for
/// methods the source generator did not see. Built once per task: the call is a compiled delegate; awaitable results
/// are awaited without reflection.
/// </summary>
[RequiresUnreferencedCode(Why)]
[RequiresDynamicCode(Why)]
internal sealed class ReflectionTaskInvoker : TaskInvoker
{
    /// <summary>Why trimmed and AOT-compiled apps should register tasks with the generated <c>CeleriacTasks.AddTo(app)</c>.</summary>
    internal const string Why = "A task registered by reflection (a delegate, a MethodInfo, or an assembly scan) binds its arguments by reflection; in trimmed or NativeAOT apps register [CeleriacTask] methods with the generated CeleriacTasks.AddTo(app).";

    private static long s_invocations;

    private readonly string _taskName;
    private readonly Parameter[] _parameters;
    private readonly Parameter[] _jsonParameters;
    private readonly MethodInfo _method;
    private Compiled? _compiled;
    private readonly object? _target;
    private readonly Type? _targetType;
    private readonly Parameter? _varArgs;
    private readonly bool _varKwargs;
    private readonly string[] _names;
    private readonly Parameter? _model;

    public ReflectionTaskInvoker(string taskName, MethodInfo method, object? target, Type? targetType)
        : base(taskName)
    {
        _taskName = taskName;
        _target = target;
        _targetType = method.IsStatic || target is not null ? null : targetType ?? method.DeclaringType;
        _parameters = method.GetParameters().Select(Classify).ToArray();
        _jsonParameters = _parameters.Where(p => p.Kind == ParameterKind.Json).ToArray();
        _varArgs = _parameters.FirstOrDefault(p => p.Kind == ParameterKind.VarArgs);
        _varKwargs = _parameters.Any(p => p.Kind == ParameterKind.VarKwargs);
        _names = [.. _jsonParameters.Select(p => p.Name)];
        _model = _jsonParameters is [{ IsModel: true } only] ? only : null;
        NeedsServices = _targetType is not null || _parameters.Any(p => p.Kind == ParameterKind.Service);
        Parameters = [.. _jsonParameters.Select(p => new TaskParameter(p.Name, p.Type, p.HasDefault))];
        _method = method;
        ReturnType = ResultTypeOf(method.ReturnType);
    }

    /// <summary>How many calls reflection invokers made in this process (tests prove generated invokers bypass them).</summary>
    internal static long Invocations => Interlocked.Read(ref s_invocations);

    /// <inheritdoc />
    public override bool NeedsServices { get; }

    /// <summary>The result type after awaiting.</summary>
    public Type ReturnType { get; }

    /// <inheritdoc />
    public override IReadOnlyList<TaskParameter> Parameters { get; }

    /// <inheritdoc />
    public override Type? TargetType => _targetType;

    /// <inheritdoc />
    public override IReadOnlyList<TaskParameter> ServiceParameters =>
        [.. _parameters.Where(p => p.Kind == ParameterKind.Service).Select(p => new TaskParameter(p.Name, p.Type, false))];

    /// <inheritdoc />
    public override ValueTask<object?> InvokeAsync(TaskMessage message, TaskContext context, IServiceProvider? services)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(context);
        Interlocked.Increment(ref s_invocations);
        object?[] values = Bind(message, context, services);
        object? target = _target;
        if (_targetType is not null)
        {
            target = ActivatorUtilities.GetServiceOrCreateInstance(services ?? EmptyServices.Instance, _targetType);
        }

        // Compiled on the first call, not at registration: an app registers the builtins and often many tasks it never
        // runs, and compiling them all cost a worker's boot time and the memory of the expression compiler.
        Compiled compiled = _compiled ??= Compile(_method);
        object? result;
        try
        {
            result = compiled.Call(target, values);
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(ex.InnerException);
            throw;
        }

        return compiled.Await is null ? new ValueTask<object?>(result) : compiled.Await(result);
    }

    private object?[] Bind(TaskMessage message, TaskContext context, IServiceProvider? services)
    {
        JsonElement args = message.Args;
        JsonElement kwargs = message.Kwargs;
        bool kwargsAreModel = _model is not null && TaskBinding.KwargsAreModel(_model.Name, args, kwargs);
        int given = kwargsAreModel ? 0 : TaskBinding.Check(_taskName, args, kwargs, _names, _varArgs is not null, _varKwargs);

        object?[] values = new object?[_parameters.Length];
        int position = 0;
        for (int i = 0; i < _parameters.Length; i++)
        {
            Parameter p = _parameters[i];
            switch (p.Kind)
            {
                case ParameterKind.CancellationToken:
                    values[i] = context.CancellationToken;
                    break;
                case ParameterKind.Context:
                    values[i] = context;
                    break;
                case ParameterKind.VarArgs:
                    Type element = p.Type.GetElementType()!;
                    int rest = Math.Max(0, given - position);
                    var array = Array.CreateInstance(element, rest);
                    for (int j = 0; j < rest; j++)
                    {
                        array.SetValue(Convert(p with { Type = element, TypeCode = Type.GetTypeCode(element), AcceptsNull = true }, args[position + j]), j);
                    }

                    values[i] = array;
                    position = Math.Max(position, given);
                    break;
                case ParameterKind.VarKwargs:
                    var extra = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
                    foreach (JsonProperty kw in kwargs.EnumerateObject())
                    {
                        if (Array.FindIndex(_jsonParameters, jp => kw.NameEquals(jp.Name)) < 0)
                        {
                            extra[kw.Name] = kw.Value.Clone();
                        }
                    }

                    values[i] = extra;
                    break;
                case ParameterKind.Service:
                    values[i] = (services ?? EmptyServices.Instance).GetService(p.Type)
                        ?? throw new InvalidOperationException($"{_taskName}(): no service of type {p.Type.Name} is registered for parameter '{p.Name}'");
                    break;
                default:
                    if (kwargsAreModel)
                    {
                        values[i] = Convert(p, kwargs);
                    }
                    else if (position < given)
                    {
                        values[i] = Convert(p, args[position]);
                    }
                    else if (kwargs.TryGetProperty(p.Name, out JsonElement kw))
                    {
                        values[i] = Convert(p, kw);
                    }
                    else if (p.HasDefault)
                    {
                        values[i] = p.Default;
                    }
                    else
                    {
                        throw new TaskArgumentException($"{_taskName}() missing required argument '{p.Name}'");
                    }

                    if (p.IsModel)
                    {
                        TaskBinding.Validate(_taskName, p.Name, values[i]);
                    }

                    position++;
                    break;
            }
        }

        return values;
    }

    private object? Convert(Parameter p, JsonElement e)
    {
        try
        {
            if (p.Type == typeof(JsonElement))
            {
                // JSON null is a JsonElement too; a CLR null cannot be unboxed to the struct.
                return e.Clone();
            }

            if (e.ValueKind == JsonValueKind.Null)
            {
                return p.AcceptsNull ? null : throw new TaskArgumentException($"{_taskName}() argument '{p.Name}' must be {TaskBinding.Describe(p.Type)}, not null");
            }

            switch (p.TypeCode)
            {
                case TypeCode.Int32 when e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i): return i;
                case TypeCode.Int64 when e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long l): return l;
                case TypeCode.Double when e.ValueKind == JsonValueKind.Number: return e.GetDouble();
                case TypeCode.String when e.ValueKind == JsonValueKind.String: return e.GetString();
                case TypeCode.Boolean when e.ValueKind is JsonValueKind.True or JsonValueKind.False: return e.GetBoolean();
                default: break;
            }

            if (p.Type == typeof(object))
            {
                return JsonValues.Parse(System.Text.Encoding.UTF8.GetBytes(e.GetRawText()));
            }

            return e.Deserialize(CeleryJson.Options.GetTypeInfo(p.Type));
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException or NotSupportedException or OverflowException)
        {
            throw new TaskArgumentException($"{_taskName}() argument '{p.Name}' must be {TaskBinding.Describe(p.Type)}, got {TaskBinding.DescribeJson(e)}");
        }
    }

    private static Parameter Classify(ParameterInfo info)
    {
        Type t = info.ParameterType;
        ParameterKind kind =
            t == typeof(CancellationToken) ? ParameterKind.CancellationToken :
            t == typeof(TaskContext) ? ParameterKind.Context :
            t.IsArray && info.GetCustomAttribute<ParamArrayAttribute>() is not null ? ParameterKind.VarArgs :
            info.Name == "kwargs" && (t == typeof(IReadOnlyDictionary<string, JsonElement>) || t == typeof(Dictionary<string, JsonElement>) || t == typeof(IDictionary<string, JsonElement>)) ? ParameterKind.VarKwargs :
            info.GetCustomAttribute<InjectAttribute>() is not null || IsServiceType(t) ? ParameterKind.Service :
            ParameterKind.Json;
        bool acceptsNull = !t.IsValueType || Nullable.GetUnderlyingType(t) is not null;
        if (acceptsNull && !t.IsValueType && t != typeof(object) && t != typeof(JsonElement))
        {
            // A context of its own: NullabilityInfoContext caches in a plain Dictionary, and apps may register tasks on
            // several threads at once (it failed with "same key already added" when two apps started together).
            acceptsNull = new NullabilityInfoContext().Create(info).WriteState != NullabilityState.NotNull;
        }

        return new Parameter(
            info.Name ?? $"arg{info.Position}",
            t,
            kind,
            info.HasDefaultValue,
            info.HasDefaultValue ? info.DefaultValue : null,
            acceptsNull || t == typeof(JsonElement),
            Type.GetTypeCode(t))
        {
            IsModel = kind == ParameterKind.Json && TaskBinding.IsModel(t),
        };
    }

    private static bool IsServiceType(Type t)
    {
        if (t == typeof(IServiceProvider))
        {
            return true;
        }

        if (!t.IsInterface && !t.IsAbstract)
        {
            return false;
        }

        // Collection interfaces bind from JSON lists and dicts.
        return !(t.IsGenericType && t.GetGenericTypeDefinition() is { } g &&
            (g == typeof(IEnumerable<>) || g == typeof(IList<>) || g == typeof(IReadOnlyList<>) || g == typeof(ICollection<>) ||
             g == typeof(IReadOnlyCollection<>) || g == typeof(IDictionary<,>) || g == typeof(IReadOnlyDictionary<,>) || g == typeof(ISet<>)));
    }

    /// <summary>What a task method's return type gives once awaited: its value's type, or void for a plain task.</summary>
    private static Type ResultTypeOf(Type rt) =>
        rt == typeof(Task) || rt == typeof(ValueTask) ? typeof(void)
        : rt.IsGenericType && (rt.GetGenericTypeDefinition() == typeof(Task<>) || rt.GetGenericTypeDefinition() == typeof(ValueTask<>)) ? rt.GetGenericArguments()[0]
        : rt;

    private static Compiled Compile(MethodInfo method)
    {
        ParameterExpression target = Expression.Parameter(typeof(object), "target");
        ParameterExpression args = Expression.Parameter(typeof(object?[]), "args");
        Expression[] arguments = method.GetParameters()
            .Select((p, i) => (Expression)Expression.Convert(Expression.ArrayIndex(args, Expression.Constant(i)), p.ParameterType))
            .ToArray();
        Expression? instance = method.IsStatic ? null : Expression.Convert(target, method.DeclaringType!);
        Expression call = Expression.Call(instance, method, arguments);
        Expression body = method.ReturnType == typeof(void)
            ? Expression.Block(call, Expression.Constant(null, typeof(object)))
            : Expression.Convert(call, typeof(object));
        Func<object?, object?[], object?> compiled = Expression.Lambda<Func<object?, object?[], object?>>(body, target, args).Compile();

        Type rt = method.ReturnType;
        if (rt == typeof(Task))
        {
            return new Compiled(compiled, static r => AwaitTask((Task)r!));
        }

        if (rt == typeof(ValueTask))
        {
            return new Compiled(compiled, static r => AwaitValueTask((ValueTask)r!));
        }

        if (rt.IsGenericType && (rt.GetGenericTypeDefinition() == typeof(Task<>) || rt.GetGenericTypeDefinition() == typeof(ValueTask<>)))
        {
            Type inner = rt.GetGenericArguments()[0];
            string helper = rt.GetGenericTypeDefinition() == typeof(Task<>) ? nameof(AwaitTaskOf) : nameof(AwaitValueTaskOf);
            MethodInfo m = typeof(ReflectionTaskInvoker).GetMethod(helper, BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(inner);
            ParameterExpression r = Expression.Parameter(typeof(object), "r");
            var awaiter = Expression.Lambda<Func<object?, ValueTask<object?>>>(Expression.Call(m, Expression.Convert(r, rt)), r).Compile();
            return new Compiled(compiled, awaiter);
        }

        return new Compiled(compiled, null);
    }

    /// <summary>The compiled call of a task method, and how to await what it returns (none when it returns a value).</summary>
    private sealed record Compiled(Func<object?, object?[], object?> Call, Func<object?, ValueTask<object?>>? Await);

    private static async ValueTask<object?> AwaitTask(Task t)
    {
        await t.ConfigureAwait(false);
        return null;
    }

    private static async ValueTask<object?> AwaitValueTask(ValueTask t)
    {
        await t.ConfigureAwait(false);
        return null;
    }

    private static ValueTask<object?> AwaitTaskOf<T>(Task<T> t) =>
        t.IsCompletedSuccessfully ? new ValueTask<object?>(t.Result) : Slow(t);

    private static async ValueTask<object?> Slow<T>(Task<T> t) => await t.ConfigureAwait(false);

    private static ValueTask<object?> AwaitValueTaskOf<T>(ValueTask<T> t) =>
        t.IsCompletedSuccessfully ? new ValueTask<object?>(t.Result) : SlowValue(t);

    private static async ValueTask<object?> SlowValue<T>(ValueTask<T> t) => await t.ConfigureAwait(false);

    private enum ParameterKind
    {
        Json,
        CancellationToken,
        Context,
        Service,

        /// <summary>A <c>params</c> array: the positional arguments left over (Python's <c>*args</c>).</summary>
        VarArgs,

        /// <summary>A dictionary of JSON values named <c>kwargs</c>: the keyword arguments no parameter takes (Python's <c>**kwargs</c>).</summary>
        VarKwargs,
    }

    private sealed record Parameter(string Name, Type Type, ParameterKind Kind, bool HasDefault, object? Default, bool AcceptsNull, TypeCode TypeCode)
    {
        /// <summary>A class bound from a JSON object and validated with its DataAnnotations.</summary>
        public bool IsModel { get; init; }
    }

    private sealed class EmptyServices : IServiceProvider
    {
        public static EmptyServices Instance { get; } = new();

        public object? GetService(Type serviceType) => null;
    }
}
