using System.Globalization;
using Celeriac.Protocol;

namespace Celeriac;

/// <summary>
/// The task is to be retried later (Celery's <c>celery.exceptions.Retry</c>). A task gets one, its retry already
/// sent, from <see cref="TaskContext.RetryAsync"/> and throws it:
/// <code>throw await context.RetryAsync(ex, countdown: TimeSpan.FromSeconds(5));</code>
/// Thrown directly (<c>throw new RetryException(ex, TimeSpan.FromSeconds(5))</c>), the worker sends the retry for it,
/// by the same rules. Either way the worker stores RETRY with the reason and acks the message.
/// </summary>
public sealed class RetryException : Exception
{
    private readonly string? _message;

    /// <summary>A retry after the task's <see cref="TaskOptions.DefaultRetryDelay"/>, with no reason.</summary>
    public RetryException()
    {
    }

    /// <summary>A retry after the task's default delay, described by <paramref name="message"/>.</summary>
    public RetryException(string message) : base(message) => _message = message;

    /// <summary>A retry after the task's default delay, described by <paramref name="message"/>, because of <paramref name="innerException"/>.</summary>
    public RetryException(string message, Exception innerException) : base(message, innerException) => _message = message;

    /// <summary>
    /// A retry because of <paramref name="reason"/> (stored as the RETRY result, and the task's error once
    /// <paramref name="maxRetries"/> is reached), after <paramref name="countdown"/> or at <paramref name="eta"/>
    /// (neither: the task's <see cref="TaskOptions.DefaultRetryDelay"/>).
    /// </summary>
    public RetryException(Exception? reason, TimeSpan? countdown = null, DateTimeOffset? eta = null, int? maxRetries = null)
        : base(null, reason)
    {
        Countdown = countdown;
        Eta = eta;
        MaxRetries = maxRetries;
    }

    /// <summary>Why the task is retried (Celery's <c>exc</c>), or <see langword="null"/>.</summary>
    public Exception? Reason => InnerException;

    /// <summary>How long after now the retry runs, or <see langword="null"/>.</summary>
    public TimeSpan? Countdown { get; }

    /// <summary>When the retry runs, or <see langword="null"/>.</summary>
    public DateTimeOffset? Eta { get; }

    /// <summary>The limit for this retry in place of the task's <see cref="TaskOptions.MaxRetries"/>, or <see langword="null"/>.</summary>
    public int? MaxRetries { get; }

    /// <summary>Whether the retry message was sent already (by <see cref="TaskContext.RetryAsync"/>).</summary>
    internal bool Sent { get; init; }

    /// <summary>As Celery words it: <c>Retry in 5s: KeyError('x')</c>, or <c>Retry at 2026-01-02 03:04:05+00:00</c>.</summary>
    public override string Message
    {
        get
        {
            if (_message is not null)
            {
                return _message;
            }

            string when = Eta is { } eta ? "at " + PythonTime(eta)
                : Countdown is { } countdown ? "in " + countdown.TotalSeconds.ToString("R", CultureInfo.InvariantCulture) + "s"
                : "";
            string text = when.Length == 0 ? "Retry" : "Retry " + when;
            return Reason is { } reason ? $"{text}: {Repr(reason)}" : text;
        }
    }

    /// <summary>Python's repr of an exception, as Celery writes the reason: <c>KeyError('x')</c>.</summary>
    internal static string Repr(Exception exception)
    {
        ExceptionInfo info = ExceptionInfo.From(exception);
        return $"{info.Type}({PythonRepr.OfString(info.Message)})";
    }

    /// <summary>Python's str of an aware datetime: <c>2026-01-02 03:04:05.123456+00:00</c>, without zero microseconds.</summary>
    private static string PythonTime(DateTimeOffset time)
    {
        DateTime utc = time.UtcDateTime;
        string format = utc.Ticks % TimeSpan.TicksPerSecond / 10 == 0 ? "yyyy-MM-dd HH:mm:ss'+00:00'" : "yyyy-MM-dd HH:mm:ss.ffffff'+00:00'";
        return utc.ToString(format, CultureInfo.InvariantCulture);
    }
}
