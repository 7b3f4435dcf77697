using Celeriac.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Celeriac;

/// <summary>Registers Celeriac in a service collection.</summary>
public static class CeleriacServiceCollectionExtensions
{
    /// <summary>
    /// Registers the app as a singleton: options from <paramref name="configure"/>, then the host's
    /// <c>Celeriac</c> configuration section, then <c>CELERIAC_*</c> environment variables. Tasks resolve their
    /// dependencies from the container, one scope per run. Calling it again returns the same builder.
    /// </summary>
    public static CeleriacBuilder AddCeleriac(this IServiceCollection services, Action<CeleriacOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.FirstOrDefault(d => d.ServiceType == typeof(CeleriacBuilder))?.ImplementationInstance is CeleriacBuilder existing)
        {
            if (configure is not null)
            {
                existing.Configurations.Add(configure);
            }

            return existing;
        }

        var builder = new CeleriacBuilder(services);
        if (configure is not null)
        {
            builder.Configurations.Add(configure);
        }

        services.AddSingleton(builder);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp =>
        {
            var options = new CeleriacOptions
            {
                TimeProvider = sp.GetRequiredService<TimeProvider>(),
                LoggerFactory = sp.GetService<ILoggerFactory>(),
                Services = sp,
            };
            foreach (Action<CeleriacOptions> c in builder.Configurations)
            {
                c(options);
            }

            if (sp.GetService<IConfiguration>()?.GetSection("Celeriac") is { } section && section.Exists())
            {
                foreach (IConfigurationSection child in section.GetChildren())
                {
                    if (child.Key == "TaskRoutes")
                    {
                        foreach (IConfigurationSection route in child.GetChildren())
                        {
                            options.TaskRoutes[route.Key] = route.Value ?? "";
                        }
                    }
                    else if (child.Key == "ResultBackendSettings")
                    {
                        foreach (IConfigurationSection setting in child.GetChildren())
                        {
                            options.ResultBackendSettings[setting.Key] = setting.Value ?? ConfigurationJson.ToJson(setting).GetRawText();
                        }
                    }
                    else if (child.Key == "BeatSchedule")
                    {
                        foreach (IConfigurationSection entry in child.GetChildren())
                        {
                            options.BeatSchedule[entry.Key] = ConfigurationJson.ToJson(entry);
                        }
                    }
                    else
                    {
                        string value = child.Value ?? string.Join(',', child.GetChildren().Select(c => c.Value));
                        CeleriacSettings.ApplySetting(options, child.Key, value);
                    }
                }
            }

            CeleriacSettings.ApplyEnvironment(options, Environment.GetEnvironmentVariable);
            var app = new CeleriacApp(options);
            foreach (Action<CeleriacApp> register in builder.Registrations)
            {
                register(app);
            }

            return app;
        });
        services.TryAddSingleton<ICeleriacClient>(static sp => sp.GetRequiredService<CeleriacApp>());
        services.TryAddSingleton<Control.ICeleriacControl>(static sp => Control.ControlClient.For(sp.GetRequiredService<CeleriacApp>()));
        return builder;
    }

    /// <summary>Registers a delegate task.</summary>
    public static CeleriacBuilder AddTask(this CeleriacBuilder builder, string name, Delegate handler, TaskOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Registrations.Add(app => app.Task(name, handler, options));
        return builder;
    }

    /// <summary>Registers the <see cref="CeleriacTaskAttribute"/> tasks of the assembly that holds <typeparamref name="T"/>.</summary>
    public static CeleriacBuilder AddTasksFromAssemblyOf<T>(this CeleriacBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Registrations.Add(app => app.AddTasksFromAssembly(typeof(T).Assembly));
        return builder;
    }

    /// <summary>
    /// Runs beat as a hosted service (with the entries <paramref name="schedule"/> adds to <c>app.Beat</c>, and those of
    /// configuration and of the store). Several hosts may run it: one sends (see <see cref="Beat.CeleriacBeat"/>).
    /// </summary>
    public static CeleriacBuilder AddBeat(this CeleriacBuilder builder, Action<Beat.BeatScheduleBuilder>? schedule = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (schedule is not null)
        {
            builder.Registrations.Add(app => schedule(Beat.BeatScheduleBuilder.For(app)));
        }

        builder.Services.AddHostedService<BeatHostedService>();
        return builder;
    }

    /// <summary>Runs a worker as a hosted service: host stop is a warm shutdown.</summary>
    public static CeleriacBuilder AddWorker(this CeleriacBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        // One instance, reachable by the health checks as well as run by the host.
        builder.Services.TryAddSingleton<WorkerHostedService>();
        builder.Services.AddHostedService(static sp => sp.GetRequiredService<WorkerHostedService>());
        return builder;
    }
}

/// <summary>What <c>AddCeleriac</c> returns: the services, to chain provider and worker registrations on.</summary>
public sealed class CeleriacBuilder
{
    internal CeleriacBuilder(IServiceCollection services) => Services = services;

    /// <summary>The service collection.</summary>
    public IServiceCollection Services { get; }

    internal List<Action<CeleriacOptions>> Configurations { get; } = [];

    internal List<Action<CeleriacApp>> Registrations { get; } = [];
}

/// <summary>
/// Hosts a <see cref="CeleriacWorker"/>: started with the host, warm-stopped with it; the post-run steps registered in
/// DI run after each task. In a prefork pool's child (the same host, started again by the worker's pool) it serves the
/// parent instead, and stops the host when the parent lets it go.
/// </summary>
internal sealed class WorkerHostedService(CeleriacApp app, IEnumerable<IPostRunStep> steps, IHostApplicationLifetime? lifetime = null) : BackgroundService
{
    /// <summary>The worker, once the host has started it (null in a prefork child).</summary>
    public CeleriacWorker? Worker { get; private set; }

    /// <summary>Refuses to start, before the host reports started, when DI cannot build a task the worker serves.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (!PoolChild.IsCurrentProcess && app.Options.Services is { } services)
        {
            TaskBuildCheck.ThrowIfAny(app, services, app.LoggerFactory.CreateLogger("Celeriac.Worker"));
        }

        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!PoolChild.IsCurrentProcess)
        {
            Worker = new CeleriacWorker(app, steps);
            await Worker.RunAsync(stoppingToken).ConfigureAwait(false);
            return;
        }

        Environment.ExitCode = await PoolChild.RunAsync(app, stoppingToken).ConfigureAwait(false);
        lifetime?.StopApplication();
    }
}

/// <summary>Hosts a <see cref="Beat.CeleriacBeat"/>: started with the host; the host's stop releases its lease.</summary>
internal sealed class BeatHostedService(CeleriacApp app) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        PoolChild.IsCurrentProcess ? Task.CompletedTask : new Beat.CeleriacBeat(app).RunAsync(stoppingToken);
}
