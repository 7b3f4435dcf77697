using System.Reflection;
using Celeriac.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Celeriac.Worker;

/// <summary>
/// Checks at start that DI can build every task a worker serves (the class of a <c>[CeleriacTask]</c> instance method
/// and the services its parameters ask for), so that a missing registration stops the worker at once with a line per
/// task, instead of failing each task when it first runs.
/// </summary>
internal static class TaskBuildCheck
{
    /// <summary>The tasks of <paramref name="app"/> that cannot be built from <paramref name="services"/>, each with its reason.</summary>
    public static List<(string Task, string Reason)> Problems(CeleriacApp app, IServiceProvider services)
    {
        var problems = new List<(string, string)>();
        IServiceProviderIsService? isService = services.GetService<IServiceProviderIsService>();
        foreach (string taskName in app.Tasks.Names)
        {
            if (!app.Tasks.TryGet(taskName, out CeleriacTask? task) || task.Invoker is not { } invoker)
            {
                continue;
            }

            if (invoker.TargetType is { } type && !CanBuild(type, services, isService, out string? why))
            {
                problems.Add((task.Name, why));
                continue;
            }

            foreach ((string name, Type parameterType, _) in invoker.ServiceParameters)
            {
                if (!IsResolvable(parameterType, services, isService))
                {
                    problems.Add((task.Name, $"its parameter '{name}' needs a {parameterType.Name}, and no service of that type is registered"));
                    break;
                }
            }
        }

        return problems;
    }

    /// <summary>Logs one line per task that cannot be built and throws a <see cref="CeleriacConfigurationException"/> listing them; nothing when all can.</summary>
    public static void ThrowIfAny(CeleriacApp app, IServiceProvider services, ILogger logger)
    {
        List<(string Task, string Reason)> problems = Problems(app, services);
        if (problems.Count == 0)
        {
            return;
        }

        foreach ((string task, string reason) in problems)
        {
            Log.TaskCannotBeBuilt(logger, task, reason);
        }

        throw new CeleriacConfigurationException(
            $"The worker cannot start: {problems.Count} task(s) cannot be built from the registered services (register what they need with services.Add...):\n"
            + string.Join("\n", problems.Select(p => $"  {p.Task}: {p.Reason}")));
    }

    private static bool CanBuild(Type type, IServiceProvider services, IServiceProviderIsService? isService, out string why)
    {
        if (isService?.IsService(type) == true)
        {
            why = "";
            return true;
        }

        ConstructorInfo[] constructors = type.GetConstructors(BindingFlags.Public | BindingFlags.Instance);
        if (constructors.Length == 0)
        {
            why = $"{type.Name} has no public constructor";
            return false;
        }

        // ActivatorUtilities takes a constructor whose every parameter DI can fill or that has a default.
        string? firstMissing = null;
        foreach (ConstructorInfo constructor in constructors.OrderByDescending(c => c.GetParameters().Length))
        {
            ParameterInfo? missing = constructor.GetParameters().FirstOrDefault(p => !p.HasDefaultValue && !IsResolvable(p.ParameterType, services, isService));
            if (missing is null)
            {
                why = "";
                return true;
            }

            firstMissing ??= $"the constructor of {type.Name} needs a {missing.ParameterType.Name} ('{missing.Name}'), and no service of that type is registered";
        }

        why = firstMissing!;
        return false;
    }

    private static bool IsResolvable(Type type, IServiceProvider services, IServiceProviderIsService? isService) =>
        type == typeof(IServiceProvider) || type == typeof(TaskContext) || type == typeof(CancellationToken)
            || (isService is not null ? isService.IsService(type) : services.GetService(type) is not null);
}
