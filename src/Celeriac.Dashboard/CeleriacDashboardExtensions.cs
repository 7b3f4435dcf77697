using Celeriac.Dashboard;
using Celeriac.Dashboard.Http;
using Celeriac.Dashboard.Ingestion;
using Celeriac.Dashboard.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Celeriac;

/// <summary>Adds Celeriac's dashboard to an ASP.NET Core app: <c>services.AddCeleriacDashboard()</c> and <c>app.MapCeleriacDashboard("/celeriac")</c>.</summary>
public static class CeleriacDashboardExtensions
{
    /// <summary>
    /// Registers the dashboard: its options (validated at start), its store (opened from
    /// <see cref="CeleriacDashboardOptions.StoreUrl"/>), and the hosted services that receive the cluster's events and
    /// sample queue lengths. Uses the <see cref="CeleriacApp"/> registered in the container (<c>AddCeleriac</c>).
    /// Repeat calls only configure.
    /// </summary>
    public static IServiceCollection AddCeleriacDashboard(this IServiceCollection services, Action<CeleriacDashboardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        OptionsBuilder<CeleriacDashboardOptions> options = services.AddOptions<CeleriacDashboardOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        if (services.Any(s => s.ServiceType == typeof(DashboardIngestor)))
        {
            return services;
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CeleriacDashboardOptions>, CeleriacDashboardOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IDashboardStore>(sp =>
            DashboardStores.OpenAsync(sp.GetRequiredService<IOptions<CeleriacDashboardOptions>>().Value.StoreUrl).GetAwaiter().GetResult());
        services.TryAddSingleton<DashboardLive>();
        services.TryAddSingleton<FlowerMetrics>();
        services.TryAddSingleton<WorkerInspections>();
        services.AddSingleton<DashboardIngestor>();
        services.TryAddSingleton<QueueLengths>();
        services.TryAddTransient<FlowerApi.Deps>();
        services.AddHostedService(sp => sp.GetRequiredService<DashboardIngestor>());
        services.AddHostedService(sp => sp.GetRequiredService<QueueLengths>());
        return services;
    }

    /// <summary>
    /// Maps the dashboard under <paramref name="prefix"/>: the pages at <c>prefix/</c>, Flower's API at
    /// <c>prefix/api/...</c>, <c>prefix/metrics</c> and <c>prefix/healthcheck</c>. Basic auth and read-only mode, when
    /// configured, are enforced on every endpoint here.
    /// </summary>
    public static IEndpointConventionBuilder MapCeleriacDashboard(this IEndpointRouteBuilder endpoints, string prefix = "/celeriac")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return DashboardEndpoints.Map(endpoints, prefix);
    }
}
