using Celeriac.Testing;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the Celeriac test harness in a test's service collection.</summary>
public static class CeleriacTestingServiceCollectionExtensions
{
    /// <summary>
    /// Puts the <c>AddCeleriac</c> app under a <see cref="CeleriacTestHarness"/> (in-memory broker and results, a worker
    /// in this process) and the container's <see cref="TimeProvider"/> on the harness's fake clock. The harness is built
    /// before the first <see cref="Celeriac.ICeleriacClient"/> is handed out, so code under test sends into it; resolve
    /// <see cref="CeleriacTestHarness"/> to await what happened. Do not also start the host's own worker
    /// (<c>AddWorker</c>): the harness runs one. Calling it again does nothing.
    /// </summary>
    public static IServiceCollection AddCeleriacTestHarness(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(CeleriacTestHarness)))
        {
            return services;
        }

        services.AddSingleton(static _ => new HarnessTimeProvider(TimeProvider.System.GetUtcNow()));
        services.Replace(ServiceDescriptor.Singleton<TimeProvider>(static sp => sp.GetRequiredService<HarnessTimeProvider>()));
        services.AddSingleton(static sp => new CeleriacTestHarness(sp.GetRequiredService<Celeriac.CeleriacApp>(), sp.GetRequiredService<HarnessTimeProvider>()));
        services.Replace(ServiceDescriptor.Singleton<Celeriac.ICeleriacClient>(static sp => sp.GetRequiredService<CeleriacTestHarness>().App));
        return services;
    }
}
