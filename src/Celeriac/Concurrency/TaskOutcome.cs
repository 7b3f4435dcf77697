using System.Text.Json;

namespace Celeriac.Concurrency;

/// <summary>How a task's run ended.</summary>
public enum TaskOutcomeKind
{
    /// <summary>It returned a value (<see cref="TaskOutcome.Result"/> is its JSON).</summary>
    Succeeded,

    /// <summary>It threw (<see cref="TaskOutcome.Result"/> is Celery's exception document), or exceeded its soft time limit and then threw.</summary>
    Failed,

    /// <summary>It asked for a retry, which was sent (<see cref="TaskOutcome.Result"/> is the reason).</summary>
    Retried,

    /// <summary>It rejected its own message (Celery's <c>Reject</c>): nothing is stored.</summary>
    Rejected,

    /// <summary>The hard time limit ended it (Celery's <c>TimeLimitExceeded</c>).</summary>
    TimeLimitExceeded,

    /// <summary>What ran it went away under it: a cold shutdown, or a pool process that died (Celery's <c>WorkerLostError</c>).</summary>
    WorkerLost,

    /// <summary>A soft shutdown's timeout cut it off: a late-acked message goes back to the queue.</summary>
    ShutdownCut,

    /// <summary>It was revoked (<see cref="TaskOutcome.Reason"/>: revoked or expired before it ran, or terminated while it ran).</summary>
    Revoked,

    /// <summary>It asked to be ignored (Celery's <c>Ignore</c>, e.g. after replacing itself): nothing is stored, no callback runs, the message is acked.</summary>
    Ignored,
}

/// <summary>
/// The outcome of one task run, as a value: what the post-run steps (store the result, callbacks, events) and the
/// settlement (ack, reject, requeue) act on. It carries JSON, not objects, so that it can cross a process boundary
/// (the prefork pool's children); <see cref="Value"/> and <see cref="Exception"/> are set only where the task ran in
/// the worker's own process.
/// </summary>
public sealed class TaskOutcome
{
    private static readonly byte[] s_softLimit = """{"exc_type":"SoftTimeLimitExceeded","exc_message":[],"exc_module":"billiard.exceptions"}"""u8.ToArray();

    /// <summary>How the run ended.</summary>
    public required TaskOutcomeKind Kind { get; init; }

    /// <summary>
    /// The JSON Celery stores as the result: the value, the exception document (<c>exc_type</c>, <c>exc_message</c>,
    /// <c>exc_module</c>), or the retry's reason; <see langword="null"/> when nothing is to be stored.
    /// </summary>
    public byte[]? Result { get; init; }

    /// <summary>The traceback stored with a failure or retry.</summary>
    public string? Traceback { get; init; }

    /// <summary>The exception's type name, as Celery names it (<c>TypeError</c>, <c>TimeLimitExceeded</c>).</summary>
    public string? ErrorType { get; init; }

    /// <summary>The exception's message.</summary>
    public string? ErrorMessage { get; init; }

    /// <summary>The exception's Python module (<c>builtins</c>, <c>billiard.exceptions</c>).</summary>
    public string? ErrorModule { get; init; }

    /// <summary>Whether a failure's stack trace is worth logging (not for bad arguments or time limits).</summary>
    public bool LogStack { get; init; }

    /// <summary>
    /// The tasks it sent while it ran, as Celery's result tuples (a JSON list, the stored result's <c>children</c>), or
    /// <see langword="null"/> for none.
    /// </summary>
    public byte[]? Children { get; init; }

    /// <summary>For <see cref="TaskOutcomeKind.Rejected"/>: whether the message goes back to the queue.</summary>
    public bool Requeue { get; init; }

    /// <summary>Why it was rejected or retried, or why the worker was lost.</summary>
    public string? Reason { get; init; }

    /// <summary>How long the task's code ran, in seconds.</summary>
    public double Runtime { get; init; }

    /// <summary>Whether the task's success, failure, retry and postrun signals were raised where it ran.</summary>
    public bool SignalsRaised { get; init; }

    /// <summary>The value it returned, when it ran in this process.</summary>
    public object? Value { get; init; }

    /// <summary>The exception it threw, when it ran in this process.</summary>
    public Exception? Exception { get; init; }

    /// <summary>A success whose value nobody reads (an ignored result, no log line): shared, so it costs nothing.</summary>
    public static TaskOutcome Quiet { get; } = new() { Kind = TaskOutcomeKind.Succeeded, SignalsRaised = true };

    /// <summary>The hard time limit ended the run after <paramref name="seconds"/>.</summary>
    public static TaskOutcome TimeLimit(double seconds) => new()
    {
        Kind = TaskOutcomeKind.TimeLimitExceeded,
        Result = TimeLimitDocument(seconds),
        ErrorType = "TimeLimitExceeded",
        ErrorMessage = FormatSeconds(seconds),
        ErrorModule = "billiard.exceptions",
        Runtime = seconds,
    };

    /// <summary>The task was revoked; <paramref name="reason"/> is <c>revoked</c>, <c>expired</c> or <c>terminated</c>.</summary>
    public static TaskOutcome Revoked(string reason) => new() { Kind = TaskOutcomeKind.Revoked, Reason = reason };

    /// <summary>What ran the task went away (<paramref name="reason"/> says how).</summary>
    public static TaskOutcome Lost(string reason) => new() { Kind = TaskOutcomeKind.WorkerLost, Reason = reason };

    /// <summary>
    /// This failure, as Celery reports a task that threw after its soft time limit: <c>SoftTimeLimitExceeded</c>, with the
    /// task's own traceback kept.
    /// </summary>
    public TaskOutcome AsSoftTimeLimitExceeded() => new()
    {
        Kind = TaskOutcomeKind.Failed,
        Result = s_softLimit,
        Traceback = Traceback,
        ErrorType = "SoftTimeLimitExceeded",
        ErrorMessage = "",
        ErrorModule = "billiard.exceptions",
        Runtime = Runtime,
        SignalsRaised = SignalsRaised,
        Exception = Exception,
    };

    /// <summary>Seconds as Celery's log lines print them: <c>1</c>, <c>0.5</c>.</summary>
    public static string FormatSeconds(double seconds) => seconds.ToString("R", System.Globalization.CultureInfo.InvariantCulture);

    private static byte[] TimeLimitDocument(double seconds)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(96);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("exc_type"u8, "TimeLimitExceeded");
            w.WriteStartArray("exc_message"u8);

            // Python prints an integral limit as the int it was given: TimeLimitExceeded(1,).
            if (seconds == Math.Floor(seconds) && seconds < long.MaxValue)
            {
                w.WriteNumberValue((long)seconds);
            }
            else
            {
                w.WriteNumberValue(seconds);
            }

            w.WriteEndArray();
            w.WriteString("exc_module"u8, "billiard.exceptions");
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
