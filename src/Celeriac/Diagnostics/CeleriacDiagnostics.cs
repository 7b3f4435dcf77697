using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Celeriac.Diagnostics;

/// <summary>
/// Celeriac's traces and metrics: one <see cref="ActivitySource"/> and one <see cref="Meter"/>, both named
/// <see cref="Name"/>. Spans: <c>apply_async/&lt;task&gt;</c> (producer) as a task is sent, <c>receive/&lt;task&gt;</c>
/// and <c>run/&lt;task&gt;</c> (consumer) in the worker, named and tagged as OpenTelemetry's Celery instrumentation for
/// Python does, so that a trace across .NET and Python services reads as one. Nothing is measured or allocated while
/// nothing listens. OpenTelemetry users call <c>AddCeleriacInstrumentation()</c> (package Celeriac.OpenTelemetry).
/// </summary>
public static class CeleriacDiagnostics
{
    /// <summary>The name of Celeriac's <see cref="ActivitySource"/> and <see cref="Meter"/>.</summary>
    public const string Name = "Celeriac";

    private static readonly string? s_version = typeof(CeleriacDiagnostics).Assembly.GetName().Version?.ToString();

    internal static readonly ActivitySource Source = new(Name, s_version);

    internal static readonly Meter Meter = new(Name, s_version);

    internal static readonly Histogram<double> TaskDuration = Meter.CreateHistogram<double>(
        "celeriac.task.duration", "s", "How long tasks ran, by task and final state.");

    internal static readonly Histogram<double> ProcessDuration = Meter.CreateHistogram<double>(
        "messaging.process.duration", "s", "OpenTelemetry's messaging metric: how long processing a task message took.");

    internal static readonly Counter<long> Tasks = Meter.CreateCounter<long>(
        "celeriac.tasks", "{task}", "Tasks the worker finished, by task and state (SUCCESS, FAILURE, RETRY, REVOKED, REJECTED, IGNORED).");

    internal static readonly Histogram<double> QueueWait = Meter.CreateHistogram<double>(
        "celeriac.task.queue_wait", "s", "How long a task waited before it ran: from its ETA, else from when the worker received it, to its start.");

    internal static readonly Counter<long> Consumed = Meter.CreateCounter<long>(
        "messaging.client.consumed.messages", "{message}", "OpenTelemetry's messaging metric: task messages the worker received.");

    internal static readonly Counter<long> Sent = Meter.CreateCounter<long>(
        "messaging.client.sent.messages", "{message}", "OpenTelemetry's messaging metric: task messages sent (and confirmed where the broker confirms).");

    internal static readonly Counter<long> PublishConfirms = Meter.CreateCounter<long>(
        "celeriac.publish.confirms", "{message}", "Messages the broker confirmed (publisher confirms).");

    internal static readonly Counter<long> PublishRetries = Meter.CreateCounter<long>(
        "celeriac.publish.retries", "{message}", "Messages sent again because the broker did not confirm them.");

    /// <summary>
    /// Counts messages a broker confirmed. For transports that have publisher confirms (RabbitMQ); costs nothing while no
    /// meter listener is on.
    /// </summary>
    /// <param name="system">The broker, as <c>messaging.system</c> names it (<c>rabbitmq</c>).</param>
    /// <param name="count">How many were confirmed.</param>
    public static void RecordPublishConfirms(string system, int count)
    {
        if (PublishConfirms.Enabled && count > 0)
        {
            PublishConfirms.Add(count, new KeyValuePair<string, object?>(MessagingSystem, system));
        }
    }

    /// <summary>Counts messages a transport sends again because the broker did not confirm them.</summary>
    /// <param name="system">The broker, as <c>messaging.system</c> names it (<c>rabbitmq</c>).</param>
    /// <param name="count">How many are sent again.</param>
    public static void RecordPublishRetries(string system, int count)
    {
        if (PublishRetries.Enabled && count > 0)
        {
            PublishRetries.Add(count, new KeyValuePair<string, object?>(MessagingSystem, system));
        }
    }

    // Tag names: OpenTelemetry's messaging conventions, and the Python Celery instrumentation's own.
    internal const string MessagingSystem = "messaging.system";
    internal const string MessagingOperation = "messaging.operation";
    internal const string MessagingOperationType = "messaging.operation.type";
    internal const string MessagingOperationName = "messaging.operation.name";
    internal const string MessagingDestinationName = "messaging.destination.name";
    internal const string MessagingDestination = "messaging.destination";
    internal const string MessagingMessageId = "messaging.message.id";
    internal const string MessagingConsumerGroup = "messaging.consumer.group.name";
    internal const string CeleryAction = "celery.action";
    internal const string CeleryTaskName = "celery.task_name";
    internal const string CeleryState = "celery.state";
    internal const string CeleryRetries = "celery.retries";
    internal const string CeleryRetryReason = "celery.retry.reason";
    internal const string CeleryRevokedReason = "celery.revoked.reason";
    internal const string CeleryHostname = "celery.hostname";
    internal const string ErrorType = "error.type";

    /// <summary>The header names W3C trace context travels in (top-level message headers, where Python's instrumentation puts them).</summary>
    internal const string TraceParent = "traceparent";
    internal const string TraceState = "tracestate";

    /// <summary>
    /// The broker's <c>messaging.system</c> for a URL: <c>redis</c>, <c>rabbitmq</c>, <c>postgresql</c>, <c>sqlite</c>,
    /// <c>memory</c>, else the URL's scheme.
    /// </summary>
    internal static string SystemOf(string? url)
    {
        if (string.IsNullOrEmpty(url))
        {
            return "sqlite";
        }

        int colon = url.IndexOf(':', StringComparison.Ordinal);
        string scheme = colon > 0 ? url[..colon].ToLowerInvariant() : url.ToLowerInvariant();
        int plus = scheme.IndexOf('+', StringComparison.Ordinal);
        if (plus > 0)
        {
            scheme = scheme[..plus];
        }

        return scheme switch
        {
            "redis" or "rediss" or "sentinel" => "redis",
            "amqp" or "amqps" or "pyamqp" => "rabbitmq",
            "postgresql" or "postgres" => "postgresql",
            "sqlite" or "sqla" => "sqlite",
            "memory" => "memory",
            _ => scheme,
        };
    }

    /// <summary>Writes <paramref name="context"/> as W3C trace context into message headers.</summary>
    internal static void Inject(Activity context, IDictionary<string, object?> headers)
    {
        if (context.IdFormat != ActivityIdFormat.W3C || context.Id is not { } id)
        {
            return;
        }

        headers[TraceParent] = id;
        if (context.TraceStateString is { Length: > 0 } state)
        {
            headers[TraceState] = state;
        }
        else
        {
            headers.Remove(TraceState);
        }
    }

    /// <summary>Reads W3C trace context from message headers; default when there is none or it does not parse.</summary>
    internal static ActivityContext Extract(IReadOnlyDictionary<string, object?>? headers)
    {
        if (headers is null || !headers.TryGetValue(TraceParent, out object? parent) || parent is not string traceParent)
        {
            return default;
        }

        string? traceState = headers.TryGetValue(TraceState, out object? state) ? state as string : null;
        return ActivityContext.TryParse(traceParent, traceState, isRemote: true, out ActivityContext context) ? context : default;
    }
}
