using System.Collections.Concurrent;
using System.Reflection;

namespace Celeriac;

/// <summary>The tasks an app knows, by name.</summary>
public sealed class TaskRegistry
{
    private readonly ConcurrentDictionary<string, CeleriacTask> _tasks = new(StringComparer.Ordinal);

    /// <summary>The registered task names, sorted.</summary>
    public IReadOnlyList<string> Names => [.. _tasks.Keys.Order(StringComparer.Ordinal)];

    /// <summary>The number of registered tasks.</summary>
    public int Count => _tasks.Count;

    /// <summary>Finds a task by name.</summary>
    public bool TryGet(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CeleriacTask? task) => _tasks.TryGetValue(name, out task);

    internal void Add(CeleriacTask task)
    {
        if (!_tasks.TryAdd(task.Name, task))
        {
            throw new InvalidOperationException($"A task named '{task.Name}' is already registered.");
        }
    }

    /// <summary>
    /// The names of the tasks an assembly declares with <see cref="CeleriacTaskAttribute"/>, without registering them:
    /// to check for names already taken before <see cref="CeleriacApp.AddTasksFromAssembly"/>, which would stop at the first.
    /// Throws <see cref="InvalidOperationException"/> for a task class without exactly one public <c>Run</c> or <c>RunAsync</c>.
    /// </summary>
    public static IReadOnlyList<string> NamesIn(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        return GeneratedTasks.TryGet(assembly, out GeneratedTasks.Entry? entry) && entry.Complete
            ? [.. entry.Names]
            : [.. Scan(assembly).Select(t => t.Attribute.Name)];
    }

    /// <summary>The methods and classes of an assembly marked <see cref="CeleriacTaskAttribute"/>.</summary>
    internal static IEnumerable<(CeleriacTaskAttribute Attribute, MethodInfo Method, Type Type)> Scan(Assembly assembly)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        foreach (Type type in SafeTypes(assembly))
        {
            if (type.GetCustomAttribute<CeleriacTaskAttribute>() is { } classAttribute)
            {
                MethodInfo[] runs = type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static)
                    .Where(m => m.Name is "Run" or "RunAsync").ToArray();
                if (runs.Length != 1)
                {
                    throw new InvalidOperationException($"Task class {type.FullName} ('{classAttribute.Name}') must have exactly one public Run or RunAsync method (found {runs.Length}).");
                }

                yield return (classAttribute, runs[0], type);
            }

            foreach (MethodInfo method in type.GetMethods(all))
            {
                if (method.GetCustomAttribute<CeleriacTaskAttribute>() is { } methodAttribute)
                {
                    yield return (methodAttribute, method, type);
                }
            }
        }
    }

    private static IEnumerable<Type> SafeTypes(Assembly assembly)
    {
        try
        {
            return assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException ex)
        {
            return ex.Types.Where(t => t is not null)!;
        }
    }
}
