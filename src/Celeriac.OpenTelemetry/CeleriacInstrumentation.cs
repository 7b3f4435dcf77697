using Celeriac.Diagnostics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Celeriac;

/// <summary>Registers Celeriac's <c>ActivitySource</c> and <c>Meter</c> (both named <see cref="CeleriacDiagnostics.Name"/>) with OpenTelemetry.</summary>
public static class CeleriacInstrumentation
{
    /// <summary>
    /// Records Celeriac's spans: <c>apply_async/&lt;task&gt;</c> as a task is sent, <c>receive/&lt;task&gt;</c> and
    /// <c>run/&lt;task&gt;</c> in the worker, with the trace context carried in the message headers (W3C
    /// <c>traceparent</c>), so that a chain across .NET and Python Celery services is one trace.
    /// </summary>
    public static TracerProviderBuilder AddCeleriacInstrumentation(this TracerProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddSource(CeleriacDiagnostics.Name);
    }

    /// <summary>
    /// Collects Celeriac's metrics: <c>celeriac.task.duration</c>, <c>celeriac.tasks</c>, <c>celeriac.task.queue_wait</c>,
    /// <c>celeriac.worker.active</c>, <c>celeriac.worker.prefetched</c>, <c>celeriac.publish.confirms</c>,
    /// <c>celeriac.publish.retries</c> and OpenTelemetry's <c>messaging.*</c> metrics.
    /// </summary>
    public static MeterProviderBuilder AddCeleriacInstrumentation(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter(CeleriacDiagnostics.Name);
    }
}
