using Celeriac.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Celeriac;

/// <summary>Registers Celeriac in a service collection.</summary>
public static class CeleriacServiceCollectionExtensions
{
    /// <summary>
    /// Registers the app as a singleton, its options through the Options pattern (<c>IOptions&lt;CeleriacOptions&gt;</c>,
    /// checked when the host starts): the defaults, then <paramref name="configure"/> (and the builder's
    /// <c>UseRedis(...)</c>-style calls), then the host's configuration, read by <see cref="CeleriacSettings"/> in the
    /// host's order (appsettings.json &lt; environment, <c>CELERIAC_*</c> included &lt; command line). Tasks resolve their
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
        services.AddOptions<CeleriacOptions>()
            .Configure<IServiceProvider>(builder.ConfigureOptions)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CeleriacOptions>, CeleriacOptionsValidator>());
        services.TryAddSingleton(sp =>
        {
            var app = new CeleriacApp(sp.GetRequiredService<IOptions<CeleriacOptions>>().Value);
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
    /// Beat's settings come from <paramref name="configure"/> (code, in the order of the calls; configuration comes after).
    /// Calling it again adds the entries and settings but not a second beat.
    /// </summary>
    public static CeleriacBuilder AddBeat(this CeleriacBuilder builder, Action<Beat.BeatScheduleBuilder>? schedule = null, Action<CeleriacBeatOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (schedule is not null)
        {
            builder.Registrations.Add(app => schedule(Beat.BeatScheduleBuilder.For(app)));
        }

        if (configure is not null)
        {
            builder.Configurations.Add(o =>
            {
                var beat = new CeleriacBeatOptions();
                configure(beat);
                beat.ApplyTo(o);
            });
        }

        if (!builder.Services.Any(static d => d.ServiceType == typeof(BeatHostedService)))
        {
            builder.Services.AddSingleton<BeatHostedService>();
            builder.Services.AddHostedService(static sp => sp.GetRequiredService<BeatHostedService>());
        }

        return builder;
    }

    /// <summary>
    /// Runs a worker as a hosted service (host stop is a warm shutdown), with the worker's settings from
    /// <paramref name="configure"/> (after <c>AddCeleriac</c>'s, before configuration's). Calling it again adds the
    /// settings but not a second worker.
    /// </summary>
    public static CeleriacBuilder AddWorker(this CeleriacBuilder builder, Action<CeleriacWorkerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (configure is not null)
        {
            builder.WorkerConfigurations.Add(configure);
        }

        if (builder.Services.Any(static d => d.ServiceType == typeof(WorkerHostedService)))
        {
            return builder;
        }

        // One instance, reachable by the health checks as well as run by the host.
        builder.Services.AddSingleton<WorkerHostedService>();
        builder.Services.AddHostedService(static sp => sp.GetRequiredService<WorkerHostedService>());
        builder.Services.AddOptions<CeleriacWorkerOptions>().Configure<CeleriacApp>(static (w, app) => w.CopyFrom(app.Options));
        return builder;
    }
}

/// <summary>What <c>AddCeleriac</c> returns: the services, to chain provider and worker registrations on.</summary>
public sealed class CeleriacBuilder
{
    private readonly HashSet<Type> _providers = [];

    internal CeleriacBuilder(IServiceCollection services) => Services = services;

    /// <summary>The service collection.</summary>
    public IServiceCollection Services { get; }

    internal List<Action<CeleriacOptions>> Configurations { get; } = [];

    internal List<Action<CeleriacWorkerOptions>> WorkerConfigurations { get; } = [];

    internal List<Action<CeleriacApp>> Registrations { get; } = [];

    /// <summary>Adds settings in code, as <c>AddCeleriac(o =&gt; ...)</c> does (configuration still comes after).</summary>
    public CeleriacBuilder Configure(Action<CeleriacOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        Configurations.Add(configure);
        return this;
    }

    /// <summary>
    /// Registers a package's URL schemes with the app's <see cref="ProviderRegistry"/> explicitly, so that they need no
    /// look-up by assembly name (trimmed and NativeAOT apps). A package's <c>UseRedis(...)</c>-style call does this.
    /// </summary>
    public CeleriacBuilder AddProvider(ICeleriacProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        Type type = provider.GetType();
        if (!_providers.Add(type))
        {
            return this;
        }

        Registrations.Add(app => app.Providers.Add(provider));
        return this;
    }

    /// <summary>
    /// For a package's <c>UseRedis(url)</c>-style call: registers <paramref name="provider"/> and sets the broker URL (in
    /// code: configuration still overrides it). Throws <see cref="ArgumentException"/> for a URL whose scheme is not one
    /// of <paramref name="schemes"/>.
    /// </summary>
    public CeleriacBuilder UseBroker(ICeleriacProvider provider, string url, IReadOnlyCollection<string> schemes)
    {
        CheckUrl(url, schemes, "broker");
        return AddProvider(provider).Configure(o => o.BrokerUrl = url);
    }

    /// <summary>
    /// For a package's <c>UseMemcached(url)</c>-style call: registers <paramref name="provider"/> and sets the result
    /// backend URL (in code: configuration still overrides it). Throws <see cref="ArgumentException"/> for a URL whose
    /// scheme is not one of <paramref name="schemes"/>.
    /// </summary>
    public CeleriacBuilder UseResultBackend(ICeleriacProvider provider, string url, IReadOnlyCollection<string> schemes)
    {
        CheckUrl(url, schemes, "result backend");
        return AddProvider(provider).Configure(o => o.ResultBackend = url);
    }

    private static void CheckUrl(string url, IReadOnlyCollection<string> schemes, string what)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(schemes);
        // The scheme as written: some backends' URLs (Azure's connection strings) are no URIs after it.
        int end = url.IndexOf("://", StringComparison.Ordinal);
        string scheme = end > 0 ? url[..end] : "";
        if (!schemes.Contains(scheme, StringComparer.OrdinalIgnoreCase))
        {
            throw new ArgumentException(
                $"'{UrlText.Mask(url)}' is not a {what} URL this package serves (expected {string.Join(", ", schemes.Select(s => s + "://..."))}).",
                nameof(url));
        }
    }

    /// <summary>The options pipeline: services, code, the worker's code, then configuration.</summary>
    internal void ConfigureOptions(CeleriacOptions options, IServiceProvider services)
    {
        options.TimeProvider = services.GetRequiredService<TimeProvider>();
        options.LoggerFactory = services.GetService<ILoggerFactory>();
        options.Services = services;
        foreach (Action<CeleriacOptions> c in Configurations)
        {
            c(options);
        }

        if (WorkerConfigurations.Count > 0)
        {
            var worker = new CeleriacWorkerOptions();
            foreach (Action<CeleriacWorkerOptions> c in WorkerConfigurations)
            {
                c(worker);
            }

            worker.ApplyTo(options);
        }

        try
        {
            CeleriacSettings.BindWithEnvironment(options, services.GetService<IConfiguration>() ?? new ConfigurationBuilder().Build());
        }
        catch (CeleriacConfigurationException ex)
        {
            // As a validation failure, so that the host's start reports it as it reports a bad value.
            throw new OptionsValidationException(Options.DefaultName, typeof(CeleriacOptions), [ex.Message]);
        }
    }
}

/// <summary>Checks the app's options when the host starts (<see cref="CeleriacOptions.Validate"/>).</summary>
internal sealed class CeleriacOptionsValidator : IValidateOptions<CeleriacOptions>
{
    public ValidateOptionsResult Validate(string? name, CeleriacOptions options)
    {
        try
        {
            options.Validate();
            return ValidateOptionsResult.Success;
        }
        catch (CeleriacConfigurationException ex)
        {
            return ValidateOptionsResult.Fail("Celeriac settings: " + ex.Message);
        }
    }
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
