using System.Diagnostics;
using Celeriac.Diagnostics;
using Celeriac.Transport;

namespace Celeriac;

/// <summary>
/// The producer side of Celeriac's tracing: an <c>apply_async/&lt;task&gt;</c> span per task message sent, whose context
/// travels in the message's top-level headers as W3C <c>traceparent</c>/<c>tracestate</c> (where OpenTelemetry's Celery
/// instrumentation for Python injects it, and where its worker extracts it from). Without a listener no span is made,
/// but an ambient trace (an ASP.NET Core request's) still travels, so that the worker's span joins it.
/// </summary>
internal static class PublishTelemetry
{
    /// <summary>Starts the send span of one task message and puts the trace context in its headers; null when nothing records it.</summary>
    public static Activity? Start(TransportMessage message, string queue, string system)
    {
        ActivitySource source = CeleriacDiagnostics.Source;
        Activity? span = null;
        if (source.HasListeners() && message.Headers.TryGetValue("task", out object? task) && task is string name)
        {
            span = source.StartActivity("apply_async/" + name, ActivityKind.Producer);
            if (span is { IsAllDataRequested: true })
            {
                span.SetTag(CeleriacDiagnostics.MessagingSystem, system);
                span.SetTag(CeleriacDiagnostics.MessagingOperation, "publish");
                span.SetTag(CeleriacDiagnostics.MessagingOperationType, "send");
                span.SetTag(CeleriacDiagnostics.MessagingOperationName, "apply_async");
                span.SetTag(CeleriacDiagnostics.MessagingDestinationName, queue);
                span.SetTag(CeleriacDiagnostics.MessagingMessageId, message.CorrelationId);
                span.SetTag(CeleriacDiagnostics.CeleryAction, "apply_async");
                span.SetTag(CeleriacDiagnostics.CeleryTaskName, name);
            }
        }

        if ((span ?? Activity.Current) is { } context)
        {
            CeleriacDiagnostics.Inject(context, message.Headers);
        }

        return span;
    }

    /// <summary>Starts the spans of a batch (a group's members on one queue); null when nothing records them.</summary>
    public static Activity?[]? Start(IReadOnlyList<TransportMessage> messages, string queue, string system)
    {
        if (!CeleriacDiagnostics.Source.HasListeners())
        {
            if (Activity.Current is { } ambient)
            {
                foreach (TransportMessage m in messages)
                {
                    CeleriacDiagnostics.Inject(ambient, m.Headers);
                }
            }

            return null;
        }

        Activity? outer = Activity.Current;
        var spans = new Activity?[messages.Count];
        for (int i = 0; i < messages.Count; i++)
        {
            spans[i] = Start(messages[i], queue, system);

            // Siblings, not a nest: each span is a child of what was current before the batch.
            Activity.Current = outer;
        }

        return spans;
    }

    /// <summary>Ends the send span of one message: counts it sent, and records the error if the broker refused it.</summary>
    public static void Stop(Activity? span, string queue, string system, Exception? error, int count = 1)
    {
        if (CeleriacDiagnostics.Sent.Enabled)
        {
            var tags = new TagList
            {
                { CeleriacDiagnostics.MessagingSystem, system },
                { CeleriacDiagnostics.MessagingDestinationName, queue },
                { CeleriacDiagnostics.MessagingOperationName, "apply_async" },
            };
            if (error is not null)
            {
                tags.Add(CeleriacDiagnostics.ErrorType, error.GetType().FullName);
            }

            CeleriacDiagnostics.Sent.Add(count, tags);
        }

        if (span is null)
        {
            return;
        }

        if (error is not null)
        {
            span.SetStatus(ActivityStatusCode.Error, error.Message);
            span.AddException(error);
            span.SetTag(CeleriacDiagnostics.ErrorType, error.GetType().FullName);
        }

        span.Stop();
    }

    /// <summary>Ends a batch's spans.</summary>
    public static void Stop(Activity?[]? spans, int count, string queue, string system, Exception? error)
    {
        if (spans is null)
        {
            Stop(null, queue, system, error, count);
            return;
        }

        foreach (Activity? span in spans)
        {
            Stop(span, queue, system, error);
        }
    }
}
