using System.Reflection;
using System.Runtime.Loader;

namespace Celeriac.Cli.Commands.Worker;

/// <summary>Loads the assembly named by <c>-A</c> and registers its tasks.</summary>
internal static class TaskAssemblyLoader
{
    /// <summary>Loads a .dll by path, or an assembly by name; throws <see cref="CliUsageException"/> when it cannot.</summary>
    public static Assembly Load(string spec)
    {
        bool isPath = spec.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) || spec.Contains('/', StringComparison.Ordinal) || spec.Contains('\\', StringComparison.Ordinal);
        if (!isPath)
        {
            try
            {
                return Assembly.Load(new AssemblyName(spec));
            }
            catch (Exception ex) when (ex is FileNotFoundException or FileLoadException or BadImageFormatException or ArgumentException)
            {
                if (File.Exists(spec + ".dll"))
                {
                    return LoadFile(spec + ".dll", spec);
                }

                throw new CliUsageException($"-A/--app: cannot find assembly '{spec}' (give the path to its .dll, or the name of an assembly the app references).", ex);
            }
        }

        return LoadFile(spec, spec);
    }

    private static Assembly LoadFile(string path, string spec)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new CliUsageException($"-A/--app: assembly file '{spec}' not found.");
        }

        AssemblyName name;
        try
        {
            name = AssemblyName.GetAssemblyName(full);
        }
        catch (Exception ex) when (ex is BadImageFormatException or FileLoadException)
        {
            throw new CliUsageException($"-A/--app: '{spec}' is not a .NET assembly.", ex);
        }

        // Already loaded (the host's own assembly, say): use that one, not a second copy of its types.
        foreach (Assembly loaded in AssemblyLoadContext.Default.Assemblies)
        {
            if (AssemblyName.ReferenceMatchesDefinition(name, loaded.GetName()))
            {
                return loaded;
            }
        }

        string directory = Path.GetDirectoryName(full)!;
        AssemblyDependencyResolver? resolver = null;
        try
        {
            resolver = new AssemblyDependencyResolver(full);
        }
        catch (InvalidOperationException)
        {
            // No .deps.json beside it: probe its folder only.
        }

        AssemblyLoadContext.Default.Resolving += (context, dependency) =>
        {
            string? candidate = resolver?.ResolveAssemblyToPath(dependency);
            if (candidate is null && dependency.Name is { } simple)
            {
                string probe = Path.Combine(directory, simple + ".dll");
                candidate = File.Exists(probe) ? probe : null;
            }

            return candidate is null ? null : context.LoadFromAssemblyPath(candidate);
        };
        return AssemblyLoadContext.Default.LoadFromAssemblyPath(full);
    }

    /// <summary>Registers the assembly's tasks; a name that is already registered is a usage error, not a partial registration.</summary>
    public static int Register(CeleriacApp app, Assembly assembly)
    {
        List<string> names;
        try
        {
            names = [.. TaskRegistry.NamesIn(assembly)];
        }
        catch (InvalidOperationException ex)
        {
            throw new CliUsageException($"-A/--app: {ex.Message}", ex);
        }

        if (names.FirstOrDefault(n => app.Tasks.TryGet(n, out _)) is { } duplicate)
        {
            throw new CliUsageException($"-A/--app: task '{duplicate}' from {assembly.GetName().Name} is already registered (the app registers this assembly's tasks itself: drop -A).");
        }

        return app.AddTasksFromAssembly(assembly);
    }
}
