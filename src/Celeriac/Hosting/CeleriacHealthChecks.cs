using System.Globalization;
using Celeriac.Results;
using Celeriac.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Celeriac;

/// <summary>
/// <c>AddCeleriacHealthChecks()</c>: ASP.NET Core health checks for the broker, the result backend and the local
/// worker. In the core (not in a web package) because they read the app, its transport and its worker, which a provider
/// may only reach through public API; the core takes only Microsoft.Extensions' health-check package for it.
/// </summary>
public static class CeleriacHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds three checks: <c>celeriac-broker</c> (a queue-length round trip), <c>celeriac-result-backend</c> (a read of
    /// a result that does not exist) and <c>celeriac-worker</c> (the worker hosted with <c>AddWorker()</c> consumes: its
    /// consumer has not failed since its last take or heartbeat, and its heartbeat is recent). Each is bounded by
    /// <see cref="CeleriacHealthCheckOptions.Timeout"/>, so that a dead broker cannot hang the health endpoint. Every check
    /// is tagged <c>celeriac</c>. Calling it again adds nothing.
    /// </summary>
    public static IHealthChecksBuilder AddCeleriacHealthChecks(this IHealthChecksBuilder builder, Action<CeleriacHealthCheckOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        OptionsBuilder<CeleriacHealthCheckOptions> options = builder.Services.AddOptions<CeleriacHealthCheckOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        if (builder.Services.Any(static d => d.ServiceType == typeof(CeleriacHealthChecksMarker)))
        {
            return builder;
        }

        builder.Services.AddSingleton<CeleriacHealthChecksMarker>();

        // The registrations' own timeout is a backstop: each check bounds its I/O itself and says what timed out.
        TimeSpan backstop = TimeSpan.FromSeconds(30);
        string[] tags = ["celeriac"];
        builder.Add(new HealthCheckRegistration(BrokerHealthCheck.Name, static sp => ActivatorUtilities.CreateInstance<BrokerHealthCheck>(sp), HealthStatus.Unhealthy, [.. tags, "broker"], backstop));
        builder.Add(new HealthCheckRegistration(ResultBackendHealthCheck.Name, static sp => ActivatorUtilities.CreateInstance<ResultBackendHealthCheck>(sp), HealthStatus.Unhealthy, [.. tags, "backend"], backstop));
        builder.Add(new HealthCheckRegistration(WorkerHealthCheck.Name, static sp => ActivatorUtilities.CreateInstance<WorkerHealthCheck>(sp), HealthStatus.Unhealthy, [.. tags, "worker"], backstop));
        return builder;
    }

    private sealed class CeleriacHealthChecksMarker;
}

/// <summary>Options of Celeriac's health checks.</summary>
public sealed class CeleriacHealthCheckOptions
{
    /// <summary>How long the broker's or the result backend's round trip may take before the check is unhealthy. <value>2 s</value></summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How old the worker's last heartbeat may be before it is unhealthy; <see langword="null"/> for three heartbeat
    /// intervals. Ignored when the worker sends no heartbeats. <value>null</value>
    /// </summary>
    public TimeSpan? HeartbeatTolerance { get; set; }
}

/// <summary>Bounds a store's round trip by the options' timeout, whether or not the store honours its token.</summary>
internal static class HealthProbe
{
    public static async Task<HealthCheckResult> RunAsync(string what, string url, TimeSpan timeout, Func<CancellationToken, Task> probe, TimeProvider time, CancellationToken ct)
    {
        string masked = UrlText.Mask(url);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(timeout);
        long start = time.GetTimestamp();
        try
        {
            await probe(bounded.Token).WaitAsync(timeout, time, ct).ConfigureAwait(false);
            double ms = time.GetElapsedTime(start).TotalMilliseconds;
            return HealthCheckResult.Healthy(
                string.Create(CultureInfo.InvariantCulture, $"{what} at {masked} answered in {ms:0} ms"),
                new Dictionary<string, object> { ["url"] = masked, ["elapsed_ms"] = ms });
        }
        catch (Exception ex) when (ex is TimeoutException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return HealthCheckResult.Unhealthy(
                string.Create(CultureInfo.InvariantCulture, $"{what} at {masked} did not answer within {timeout.TotalSeconds:0.###} s"),
                data: new Dictionary<string, object> { ["url"] = masked });
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy($"{what} at {masked} is unreachable: {ex.GetType().Name}: {ex.Message}", ex, new Dictionary<string, object> { ["url"] = masked });
        }
    }
}

/// <summary>The broker answers: the default queue's length, one round trip.</summary>
internal sealed class BrokerHealthCheck(CeleriacApp app, IOptions<CeleriacHealthCheckOptions> options) : IHealthCheck
{
    public const string Name = "celeriac-broker";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        HealthProbe.RunAsync("broker", app.Options.BrokerUrl, options.Value.Timeout, async ct => await app.Transport.GetQueueLengthAsync(app.Options.DefaultQueue, ct).ConfigureAwait(false), app.Time, cancellationToken);
}

/// <summary>The result backend answers: a read of a result that does not exist, one round trip.</summary>
internal sealed class ResultBackendHealthCheck(CeleriacApp app, IOptions<CeleriacHealthCheckOptions> options) : IHealthCheck
{
    public const string Name = "celeriac-result-backend";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        string url = app.Options.ResultBackend ?? app.Options.BrokerUrl;
        IResultBackend backend = app.ResultBackend;
        if (backend is DisabledResultBackend)
        {
            return Task.FromResult(HealthCheckResult.Healthy("no result backend is configured (disabled://)"));
        }

        return HealthProbe.RunAsync("result backend", url, options.Value.Timeout, async ct => await backend.GetAsync("celeriac-health-check", ct).ConfigureAwait(false), app.Time, cancellationToken);
    }
}

/// <summary>
/// The local worker consumes: started, its consumer has not failed since its last take or heartbeat, and its heartbeat
/// is recent. Healthy with "no worker" when the app hosts none (a client-only web app).
/// </summary>
internal sealed class WorkerHealthCheck(CeleriacApp app, IOptions<CeleriacHealthCheckOptions> options, IServiceProvider services) : IHealthCheck
{
    public const string Name = "celeriac-worker";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        CeleriacWorker? worker = services.GetService<WorkerHostedService>()?.Worker;
        if (worker is null)
        {
            return Task.FromResult(services.GetService<WorkerHostedService>() is null
                ? HealthCheckResult.Healthy("this process hosts no worker")
                : HealthCheckResult.Unhealthy("the worker has not started"));
        }

        WorkerLiveness l = worker.GetLiveness();
        var data = new Dictionary<string, object> { ["worker"] = l.NodeName, ["queues"] = string.Join(',', l.Queues) };
        string take = l.SinceLastTake is { } t ? Ago(t) : "never";
        data["last_take"] = take;
        if (!l.Consuming)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"worker {l.NodeName} is not consuming yet", data: data));
        }

        if (l.SinceConsumerFault is { } fault && IsNewer(fault, l.SinceLastTake) && IsNewer(fault, l.SinceLastHeartbeat))
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"worker {l.NodeName} cannot consume from {UrlText.Mask(app.Options.BrokerUrl)}: {l.ConsumerFault} ({Ago(fault)}); last take {take}", data: data));
        }

        if (l.HeartbeatInterval is { } interval)
        {
            TimeSpan tolerance = options.Value.HeartbeatTolerance ?? interval * 3;
            TimeSpan beat = l.SinceLastHeartbeat ?? TimeSpan.MaxValue;
            if (beat > tolerance && l.Uptime > tolerance)
            {
                string since = l.SinceLastHeartbeat is { } b ? Ago(b) : "never";
                return Task.FromResult(HealthCheckResult.Unhealthy(
                    $"worker {l.NodeName} has sent no heartbeat for over {tolerance.TotalSeconds:0.#} s (last {since}) to {UrlText.Mask(app.Options.BrokerUrl)}; last take {take}", data: data));
            }
        }

        return Task.FromResult(HealthCheckResult.Healthy($"worker {l.NodeName} consumes {string.Join(", ", l.Queues)}; last take {take}", data));
    }

    /// <summary>Whether a fault <paramref name="fault"/> ago came after the event <paramref name="since"/> ago.</summary>
    private static bool IsNewer(TimeSpan fault, TimeSpan? since) => since is not { } s || fault < s;

    private static string Ago(TimeSpan t) => string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:0.#} s ago");
}
