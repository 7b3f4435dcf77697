using Celeriac.Concurrency;
using Celeriac.Protocol;

namespace Celeriac.Worker;

/// <summary>
/// The soft and hard time limits of one run, in seconds, resolved as Celery's worker does: the message's
/// <c>timelimit</c> header, else the task's limits (its options, or what the <c>time_limit</c> command set),
/// else the worker's defaults (<c>task_soft_time_limit</c>, <c>task_time_limit</c>). A zero is no limit at
/// each step, as Celery's <c>header or task.soft_time_limit</c>.
/// </summary>
internal readonly record struct TimeLimits(double? SoftSeconds, double? HardSeconds)
{
    /// <summary>The longest limit a timer can wait for (about 24 days); a longer one is no limit.</summary>
    private const double MaxSeconds = int.MaxValue / 1000.0;

    /// <summary>Resolves the limits of one message.</summary>
    public static TimeLimits Resolve(TaskHeaders headers, TimeSpan? taskSoft, TimeSpan? taskHard, CeleriacOptions worker) =>
        new(Pick(headers.SoftTimeLimit, taskSoft, worker.TaskSoftTimeLimit), Pick(headers.HardTimeLimit, taskHard, worker.TaskTimeLimit));

    /// <summary>Seconds as Celery's <c>time_limit</c> log line prints an optional value: <c>1</c>, <c>0.5</c>, <c>None</c>.</summary>
    public static string Format(TimeSpan? limit) => limit is { } l ? TaskOutcome.FormatSeconds(l.TotalSeconds) : "None";

    private static double? Pick(double? header, TimeSpan? task, TimeSpan? worker)
    {
        double? seconds = header is > 0 ? header
            : task > TimeSpan.Zero ? task.Value.TotalSeconds
            : worker > TimeSpan.Zero ? worker.Value.TotalSeconds
            : null;
        return seconds is > MaxSeconds ? null : seconds;
    }
}

/// <summary>The hard time limit ended the run: the task's code was left behind (Celery's <c>TimeLimitExceeded</c>).</summary>
internal sealed class TimeLimitExceededException : Exception
{
    public TimeLimitExceededException()
    {
    }

    public TimeLimitExceededException(string message)
        : base(message)
    {
    }

    public TimeLimitExceededException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public TimeLimitExceededException(double seconds)
        : base($"TimeLimitExceeded({TaskOutcome.FormatSeconds(seconds)},)") => Seconds = seconds;

    /// <summary>The limit that was exceeded.</summary>
    public double Seconds { get; }
}
