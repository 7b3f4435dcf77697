using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Celeriac.Concurrency;
using Celeriac.Diagnostics;
using Celeriac.Protocol;
using Celeriac.Results;

namespace Celeriac.Worker;

/// <summary>
/// The consumer side of Celeriac's tracing and metrics: a <c>receive/&lt;task&gt;</c> span from the take to the decode,
/// a <c>run/&lt;task&gt;</c> span from the start to the end of the post-run steps (so that callbacks and the next step
/// of a chain, sent by those steps, are its children), the parent of both read from the message's <c>traceparent</c>;
/// and the task metrics. Everything here first asks whether anything listens, so that a worker nobody observes pays a
/// branch per task and allocates nothing.
/// </summary>
internal static class WorkerTelemetry
{
    private static readonly ConcurrentDictionary<CeleriacWorker, byte> s_workers = new(ReferenceEqualityComparer.Instance);

    // Observed only when a meter listener collects: the registry's counts of every running worker in this process.
    private static readonly ObservableUpDownCounter<int> s_active = CeleriacDiagnostics.Meter.CreateObservableUpDownCounter(
        "celeriac.worker.active", static () => Observe(static w => w.ActiveCount), "{task}", "Tasks running now, by worker.");

    private static readonly ObservableUpDownCounter<int> s_reserved = CeleriacDiagnostics.Meter.CreateObservableUpDownCounter(
        "celeriac.worker.prefetched", static () => Observe(static w => w.ReservedCount), "{task}", "Tasks prefetched (reserved) and waiting for a slot, by worker.");

    /// <summary>Whether the worker should note when each request arrives (a span or a histogram will want it).</summary>
    public static bool Listening => CeleriacDiagnostics.Source.HasListeners() || CeleriacDiagnostics.QueueWait.Enabled || CeleriacDiagnostics.Consumed.Enabled;

    public static void Register(CeleriacWorker worker)
    {
        _ = s_active.Enabled | s_reserved.Enabled;
        s_workers.TryAdd(worker, 0);
    }

    public static void Unregister(CeleriacWorker worker) => s_workers.TryRemove(worker, out _);

    private static IEnumerable<Measurement<int>> Observe(Func<CeleriacWorker, int> count)
    {
        foreach (CeleriacWorker w in s_workers.Keys)
        {
            yield return new Measurement<int>(count(w), new KeyValuePair<string, object?>("worker", w.NodeName));
        }
    }

    /// <summary>The message is decoded: counts it received, and records the receive span from its take to now.</summary>
    public static void Received(WorkerRequest request, TaskMessage message, string system, TimeProvider time)
    {
        if (request.Telemetry is not { } noted)
        {
            return;
        }

        TaskHeaders h = message.Headers;
        if (CeleriacDiagnostics.Consumed.Enabled)
        {
            CeleriacDiagnostics.Consumed.Add(1, new TagList
            {
                { CeleriacDiagnostics.MessagingSystem, system },
                { CeleriacDiagnostics.MessagingDestinationName, request.Delivery.Queue },
            });
        }

        ActivitySource source = CeleriacDiagnostics.Source;
        if (!source.HasListeners())
        {
            return;
        }

        ActivityContext parent = CeleriacDiagnostics.Extract(h.ExtraOrNull);
        DateTimeOffset taken = time.GetUtcNow() - Stopwatch.GetElapsedTime(noted.TakenAt);
        using Activity? span = source.StartActivity("receive/" + h.Task, ActivityKind.Consumer, parent, startTime: taken);
        if (span is { IsAllDataRequested: true })
        {
            Tag(span, system, request.Delivery.Queue, h, "receive", "receive");
        }
    }

    /// <summary>Starts the run span when something records it; it becomes the current activity of the run.</summary>
    public static void StartRun(WorkerRequest request, string system, string node)
    {
        ActivitySource source = CeleriacDiagnostics.Source;
        if (request.Telemetry is not { } noted || !source.HasListeners())
        {
            return;
        }

        TaskHeaders h = request.Message!.Headers;
        ActivityContext parent = CeleriacDiagnostics.Extract(h.ExtraOrNull);

        // Without a remote parent the run starts a trace of its own rather than joining whatever the slot ran before.
        Activity.Current = null;
        Activity? span = source.StartActivity("run/" + h.Task, ActivityKind.Consumer, parent);
        if (span is { IsAllDataRequested: true })
        {
            Tag(span, system, request.Delivery.Queue, h, "process", "run");
            span.SetTag(CeleriacDiagnostics.CeleryHostname, node);
            if (h.Retries > 0)
            {
                span.SetTag(CeleriacDiagnostics.CeleryRetries, h.Retries);
            }
        }

        noted.Span = span;
    }

    /// <summary>How long the task waited once it was due (its ETA, else its arrival in the worker) before it started.</summary>
    public static void Started(WorkerRequest request, TimeProvider time)
    {
        if (request.Telemetry is not { } noted)
        {
            return;
        }

        noted.RunStartedAt = Stopwatch.GetTimestamp();
        if (!CeleriacDiagnostics.QueueWait.Enabled)
        {
            return;
        }

        TaskHeaders h = request.Message!.Headers;
        DateTimeOffset now = time.GetUtcNow();
        DateTimeOffset due = now - Stopwatch.GetElapsedTime(noted.TakenAt);
        if (h.Eta is { } eta && eta > due)
        {
            due = eta;
        }

        CeleriacDiagnostics.QueueWait.Record(Math.Max(0, (now - due).TotalSeconds), new KeyValuePair<string, object?>("task", h.Task));
    }

    private static void Tag(Activity span, string system, string queue, TaskHeaders h, string operationType, string action)
    {
        span.SetTag(CeleriacDiagnostics.MessagingSystem, system);
        span.SetTag(CeleriacDiagnostics.MessagingOperation, operationType);
        span.SetTag(CeleriacDiagnostics.MessagingOperationType, operationType);
        span.SetTag(CeleriacDiagnostics.MessagingOperationName, action);
        span.SetTag(CeleriacDiagnostics.MessagingDestinationName, queue);
        span.SetTag(CeleriacDiagnostics.MessagingDestination, queue);
        span.SetTag(CeleriacDiagnostics.MessagingMessageId, h.Id);
        span.SetTag(CeleriacDiagnostics.CeleryAction, action);
        span.SetTag(CeleriacDiagnostics.CeleryTaskName, h.Task);
    }

    /// <summary>Celery's state name for an outcome.</summary>
    public static string StateOf(TaskOutcomeKind kind) => kind switch
    {
        TaskOutcomeKind.Succeeded => TaskStates.Success,
        TaskOutcomeKind.Retried => TaskStates.Retry,
        TaskOutcomeKind.Revoked => TaskStates.Revoked,
        TaskOutcomeKind.Rejected => "REJECTED",
        TaskOutcomeKind.Ignored => "IGNORED",
        _ => TaskStates.Failure,
    };
}

/// <summary>What telemetry notes of a request, from its take to its end; made only while something listens.</summary>
internal sealed class RequestTelemetry
{
    /// <summary>When the consumer took it (a <see cref="Stopwatch"/> timestamp).</summary>
    public long TakenAt { get; } = Stopwatch.GetTimestamp();

    /// <summary>When its run started (a <see cref="Stopwatch"/> timestamp); 0 until then.</summary>
    public long RunStartedAt { get; set; }

    /// <summary>Its run span, when something records traces.</summary>
    public Activity? Span { get; set; }
}

/// <summary>
/// The last post-run step: the task's metrics (duration and count by task and state) and the end of its run span, with
/// the state, and for a failure the error status and an exception event. Last, so that the span covers the callbacks
/// and chord parts the steps before it send.
/// </summary>
internal sealed class TelemetryStep(string system) : IPostRunStep
{
    public int Order => int.MaxValue;

    public ValueTask AfterRunAsync(FinishedTask task, CancellationToken ct)
    {
        Activity? span = task.Telemetry?.Span;
        bool duration = CeleriacDiagnostics.TaskDuration.Enabled || CeleriacDiagnostics.ProcessDuration.Enabled;
        if (span is null && !duration && !CeleriacDiagnostics.Tasks.Enabled)
        {
            return ValueTask.CompletedTask;
        }

        TaskOutcome outcome = task.Outcome;
        string state = WorkerTelemetry.StateOf(outcome.Kind);
        bool failed = state == TaskStates.Failure;
        if (CeleriacDiagnostics.Tasks.Enabled)
        {
            CeleriacDiagnostics.Tasks.Add(1, new KeyValuePair<string, object?>("task", task.Name), new KeyValuePair<string, object?>("state", state));
        }

        if (duration && task.Telemetry is { RunStartedAt: not 0 } noted)
        {
            double seconds = Stopwatch.GetElapsedTime(noted.RunStartedAt).TotalSeconds;
            CeleriacDiagnostics.TaskDuration.Record(seconds, new KeyValuePair<string, object?>("task", task.Name), new KeyValuePair<string, object?>("state", state));
            if (CeleriacDiagnostics.ProcessDuration.Enabled)
            {
                var tags = new TagList
                {
                    { CeleriacDiagnostics.MessagingSystem, system },
                    { CeleriacDiagnostics.MessagingDestinationName, task.Queue },
                    { CeleriacDiagnostics.MessagingOperationName, "run" },
                };
                if (failed)
                {
                    tags.Add(CeleriacDiagnostics.ErrorType, outcome.ErrorType ?? outcome.Kind.ToString());
                }

                CeleriacDiagnostics.ProcessDuration.Record(seconds, tags);
            }
        }

        if (span is not null)
        {
            End(span, outcome, state, failed);
        }

        return ValueTask.CompletedTask;
    }

    private static void End(Activity span, TaskOutcome outcome, string state, bool failed)
    {
        if (span.IsAllDataRequested)
        {
            span.SetTag(CeleriacDiagnostics.CeleryState, state);
            switch (outcome.Kind)
            {
                case TaskOutcomeKind.Retried:
                    span.SetTag(CeleriacDiagnostics.CeleryRetryReason, outcome.Reason);
                    break;
                case TaskOutcomeKind.Revoked:
                    span.SetTag(CeleriacDiagnostics.CeleryRevokedReason, outcome.Reason);
                    break;
                default:
                    break;
            }

            if (failed)
            {
                string type = outcome.ErrorType ?? outcome.Kind.ToString();
                span.SetTag(CeleriacDiagnostics.ErrorType, type);
                if (outcome.Exception is { } ex)
                {
                    span.AddException(ex);
                }
                else
                {
                    // The run happened elsewhere (a prefork child) or was cut short: what is known of the error.
                    span.AddEvent(new ActivityEvent("exception", tags: new ActivityTagsCollection
                    {
                        ["exception.type"] = type,
                        ["exception.message"] = outcome.ErrorMessage ?? outcome.Reason,
                        ["exception.stacktrace"] = outcome.Traceback,
                    }));
                }
            }
        }

        if (failed)
        {
            span.SetStatus(ActivityStatusCode.Error, outcome.ErrorMessage ?? outcome.Reason);
        }

        span.Stop();
    }
}
