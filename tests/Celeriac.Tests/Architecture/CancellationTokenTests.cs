using System.Reflection;

namespace Celeriac.Tests.Architecture;

/// <summary>
/// Every public async API of the library takes a <see cref="CancellationToken"/> (STYLE: "every async API takes a
/// CancellationToken"), so that a caller can always give up. Read by reflection over the core's and the packages'
/// public types; the few exceptions are listed here by name, each with its reason.
/// </summary>
public sealed class CancellationTokenTests(ITestOutputHelper output)
{
    private static readonly string s_directory = Path.GetDirectoryName(typeof(CeleriacApp).Assembly.Location)!;

    /// <summary>Methods that may return a task without a token, as "Type.Method", and why.</summary>
    private static readonly Dictionary<string, string> s_exceptions = new(StringComparer.Ordinal)
    {
        // params object?[] cannot be followed by a token; the overloads DelayAsync(a, b, ct) and ApplyAsync(..., ct) take one.
        ["Celeriac.CeleriacTask.DelayAsync(Object[])"] = "params arguments; token overloads exist",
        ["Celeriac.SignatureExtensions.DelayAsync(Signature, Object[])"] = "params arguments; ApplyAsync(args, ct: ct) takes one",
        ["Celeriac.SignatureExtensions.DelayAsync(Group, Object[])"] = "params arguments; ApplyAsync(args, ct: ct) takes one",

        // Primitives that hand out one task shared by many callers (a batch, a pulse): a caller gives up on its own
        // wait with Task.WaitAsync(ct); cancelling the shared task itself would cancel everyone's.
        ["Celeriac.TaskInvoker.InvokeAsync(TaskMessage, TaskContext, IServiceProvider)"] = "the run's token is TaskContext.CancellationToken",
        ["Celeriac.TaskBinding.Box(Task)"] = "boxes a task's own result for generated invokers; nothing to cancel",
        ["Celeriac.TaskBinding.Box(Task`1)"] = "boxes a task's own result for generated invokers; nothing to cancel",
        ["Celeriac.TaskBinding.Box(ValueTask)"] = "boxes a task's own result for generated invokers; nothing to cancel",
        ["Celeriac.TaskBinding.Box(ValueTask`1)"] = "boxes a task's own result for generated invokers; nothing to cancel",
        ["Celeriac.Concurrency.Batcher`1.Enqueue(T)"] = "shared batch task; callers use Task.WaitAsync(ct)",
        ["Celeriac.Concurrency.Batcher`1.DrainAsync()"] = "shared flush task; callers use Task.WaitAsync(ct)",
        ["Celeriac.Transport.AsyncPulse.WaitAsync()"] = "shared pulse task; callers use Task.WaitAsync(ct)",
    };

    [Fact]
    public void PublicAsyncMethods_TakeACancellationToken()
    {
        Assembly[] assemblies = [.. Directory.GetFiles(s_directory, "Celeriac*.dll")
            .Where(p => !Path.GetFileName(p).StartsWith("Celeriac.Test", StringComparison.Ordinal) && !Path.GetFileName(p).Contains("Tests", StringComparison.Ordinal))
            .Select(Assembly.LoadFrom)];
        Assert.Contains(assemblies, a => a.GetName().Name == "Celeriac");
        Assert.Contains(assemblies, a => a.GetName().Name == "Celeriac.Redis");

        var missing = new List<string>();
        int checkedCount = 0;
        foreach (Assembly assembly in assemblies)
        {
            foreach (Type type in assembly.GetExportedTypes())
            {
                foreach (MethodInfo method in type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
                {
                    if (!IsAsync(method.ReturnType) || method.IsSpecialName)
                    {
                        continue;
                    }

                    checkedCount++;
                    if (method.GetParameters().Any(p => p.ParameterType == typeof(CancellationToken)) || IsExempt(method))
                    {
                        continue;
                    }

                    missing.Add(Describe(method));
                }
            }
        }

        output.WriteLine($"{checkedCount} public async methods checked");
        Assert.True(checkedCount > 100, $"only {checkedCount} methods found: the scan is not seeing the library");
        Assert.True(missing.Count == 0, "Public async methods without a CancellationToken:\n" + string.Join("\n", missing.Order(StringComparer.Ordinal)));
    }

    private static bool IsAsync(Type t) =>
        t == typeof(Task) || t == typeof(ValueTask) || t.IsGenericType && (t.GetGenericTypeDefinition() == typeof(Task<>) || t.GetGenericTypeDefinition() == typeof(ValueTask<>));

    private static string Describe(MethodInfo m) =>
        $"{m.DeclaringType!.FullName}.{m.Name}({string.Join(", ", m.GetParameters().Select(p => p.ParameterType.Name))})";

    private static bool IsExempt(MethodInfo method)
    {
        // DisposeAsync has no token by .NET's design (IAsyncDisposable).
        if (method.Name == "DisposeAsync")
        {
            return true;
        }

        // A member whose shape a .NET base type or interface fixes (Stream, a framework interface) is not ours to change.
        MethodInfo root = method.GetBaseDefinition();
        if (root.DeclaringType?.Assembly != method.DeclaringType?.Assembly && root.DeclaringType?.Assembly.GetName().Name?.StartsWith("Celeriac", StringComparison.Ordinal) != true)
        {
            return true;
        }

        if (ImplementsForeignInterface(method))
        {
            return true;
        }

        return s_exceptions.ContainsKey(Describe(method));
    }

    private static bool ImplementsForeignInterface(MethodInfo method)
    {
        Type type = method.DeclaringType!;
        if (type.IsInterface)
        {
            return false;
        }

        foreach (Type iface in type.GetInterfaces())
        {
            if (iface.Assembly.GetName().Name?.StartsWith("Celeriac", StringComparison.Ordinal) == true)
            {
                continue;
            }

            InterfaceMapping map = type.GetInterfaceMap(iface);
            if (map.TargetMethods.Contains(method))
            {
                return true;
            }
        }

        return false;
    }
}
