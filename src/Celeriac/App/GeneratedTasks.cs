using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace Celeriac;

/// <summary>
/// Where code generated from <see cref="CeleriacTaskAttribute"/> registers each assembly's tasks (from a module
/// initializer), so that <see cref="CeleriacApp.AddTasksFromAssembly"/> uses generated invokers instead of reflection.
/// Not meant to be called by hand.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class GeneratedTasks
{
    private static readonly ConcurrentDictionary<Assembly, Entry> s_entries = new();

    /// <summary>
    /// Records an assembly's generated tasks: their names, the method that registers them on an app, and whether they
    /// are all of the assembly's tasks (false when some could not be generated and are left to reflection).
    /// </summary>
    public static void Register(Assembly assembly, string[] names, bool complete, Func<CeleriacApp, int> addTo)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(addTo);
        s_entries[assembly] = new Entry(names, complete, addTo);
    }

    internal static bool TryGet(Assembly assembly, [NotNullWhen(true)] out Entry? entry)
    {
        if (!s_entries.TryGetValue(assembly, out entry))
        {
            // A module initializer runs on first use of the assembly's code; one loaded only to be scanned has not run yet.
            TaskBinding.RunModuleInitializer(assembly);
            s_entries.TryGetValue(assembly, out entry);
        }

        return entry is not null;
    }

    internal sealed record Entry(string[] Names, bool Complete, Func<CeleriacApp, int> AddTo);
}
