using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Celeriac.Diagnostics;
using Celeriac.Protocol;

namespace Celeriac.Worker;

/// <summary>Time limits and rate limits (Celery's <c>time_limit</c>, <c>soft_time_limit</c> and <c>rate_limit</c>).</summary>
public sealed partial class CeleriacWorker
{
    private static readonly Task s_never = new TaskCompletionSource().Task;
    private readonly ConcurrentDictionary<string, (TimeSpan? Soft, TimeSpan? Hard)> _timeLimitsSetAtRunTime = new(StringComparer.Ordinal);
    private volatile bool _anyTimeLimitsSetAtRunTime;

    /// <summary>
    /// Sets a task's rate limit on this worker while it runs, as Celery's <c>rate_limit</c> remote-control command does:
    /// <c>"100/s"</c>, <c>"10/m"</c>, <c>"1000/h"</c> or a number per second; <see langword="null"/>, <c>""</c> or
    /// <c>"0"</c> removes it. It replaces the task's <see cref="TaskOptions.RateLimit"/>, and tasks of that name
    /// already waiting for a token follow it at once.
    /// </summary>
    /// <exception cref="ArgumentException">The rate is not one of those forms, or no task of that name is registered.</exception>
    public void SetRateLimit(string taskName, string? rateLimit)
    {
        EnsureRegistered(taskName);

        if (!RateText.TryParse(rateLimit, out double perSecond, out string? error))
        {
            throw new ArgumentException($"Invalid rate limit '{rateLimit}' ({error}): use \"N/s\", \"N/m\", \"N/h\" or a number per second.", nameof(rateLimit));
        }

        _rateLimits.Set(taskName, perSecond);
    }

    /// <summary>
    /// Sets a task's time limits on this worker while it runs, as Celery's <c>time_limit</c> remote-control command
    /// does: they replace the task's <see cref="TaskOptions.SoftTimeLimit"/> and <see cref="TaskOptions.TimeLimit"/>
    /// (<see langword="null"/> falls back to the worker's defaults); a message's own <c>timelimit</c> header still wins.
    /// </summary>
    /// <exception cref="ArgumentException">No task of that name is registered.</exception>
    public void SetTimeLimits(string taskName, TimeSpan? softTimeLimit, TimeSpan? timeLimit)
    {
        EnsureRegistered(taskName);

        _timeLimitsSetAtRunTime[taskName] = (softTimeLimit, timeLimit);
        _anyTimeLimitsSetAtRunTime = true;
    }

    private void EnsureRegistered(string taskName)
    {
        ArgumentNullException.ThrowIfNull(taskName);
        if (!_app.Tasks.TryGet(taskName, out _))
        {
            throw new ArgumentException($"No task named '{taskName}' is registered.", nameof(taskName));
        }
    }

    private TimeLimits TimeLimitsOf(CeleriacTask task, TaskHeaders headers)
    {
        (TimeSpan? soft, TimeSpan? hard) = _anyTimeLimitsSetAtRunTime && _timeLimitsSetAtRunTime.TryGetValue(task.Name, out (TimeSpan? Soft, TimeSpan? Hard) set)
            ? set
            : (task.Options.SoftTimeLimit, task.Options.TimeLimit);
        return TimeLimits.Resolve(headers, soft, hard, _app.Options);
    }

    /// <summary>Runs the task's code: on the slot when it has no time limit, else within its limits.</summary>
    private ValueTask<object?> InvokeAsync(Request request, TaskContext context, TimeLimits limits) =>
        limits.IsNone ? InvokeCoreAsync(request, context) : InvokeWithinLimitsAsync(request, context, limits);

    /// <summary>
    /// Runs the task off its slot with its time limits. At the soft limit its token is cancelled, so it can clean up;
    /// if it then throws, the failure is SoftTimeLimitExceeded. At the hard limit its token is cancelled too and the
    /// slot stops waiting for it: the run fails with TimeLimitExceeded at once. .NET cannot stop a thread, so code that
    /// ignores the token goes on in the background until it returns; what it returns is discarded.
    /// </summary>
    private async ValueTask<object?> InvokeWithinLimitsAsync(Request request, TaskContext context, TimeLimits limits)
    {
        TaskHeaders h = request.Message!.Headers;

        // The task's token is also cancelled by its limits (a cold stop or a terminate still cancels it too).
        CancellationToken abort = context.CancellationToken;
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(abort);
        context.CancellationToken = cancel.Token;
        Task cancelling = Task.CompletedTask;

        // Off the slot, so that code that blocks without awaiting can be left behind at the hard limit too.
        Task<object?> run = Task.Run(() => InvokeCoreAsync(request, context).AsTask(), CancellationToken.None);
        bool softExceeded = false;
        using (var timers = new CancellationTokenSource())
        {
            Task soft = limits.SoftSeconds is { } s ? Task.Delay(TimeSpan.FromSeconds(s), _app.Time, timers.Token) : s_never;
            Task hard = limits.HardSeconds is { } hs ? Task.Delay(TimeSpan.FromSeconds(hs), _app.Time, timers.Token) : s_never;
            try
            {
                while (!run.IsCompleted)
                {
                    Task first = await Task.WhenAny(run, soft, hard).ConfigureAwait(false);
                    if (first == soft)
                    {
                        softExceeded = true;
                        Log.SoftTimeLimitExceeded(_logger, TimeLimits.Format(limits.SoftSeconds!.Value), h.Task, h.Id);

                        // Cancelled off this thread: the task's continuations must not run (or block) on the slot.
                        cancelling = cancel.CancelAsync();
                        soft = s_never;
                    }
                    else if (first == hard)
                    {
                        Log.HardTimeLimitExceeded(_logger, TimeLimits.Format(limits.HardSeconds!.Value), h.Task, h.Id);
                        if (!cancel.IsCancellationRequested)
                        {
                            cancelling = cancel.CancelAsync();
                        }

                        _ = AbandonAsync(run, cancelling, cancel);
                        throw new TimeLimitExceededException(limits.HardSeconds.Value);
                    }
                }
            }
            finally
            {
                await timers.CancelAsync().ConfigureAwait(false);
            }
        }

        await cancelling.ConfigureAwait(false);
        cancel.Dispose();
        try
        {
            return await run.ConfigureAwait(false);
        }
        catch (Exception ex) when (softExceeded && !abort.IsCancellationRequested)
        {
            throw new SoftTimeLimitExceededException("SoftTimeLimitExceeded()", ex);
        }
    }

    /// <summary>Waits in the background for code left behind at a hard limit, and discards its outcome.</summary>
    private static async Task AbandonAsync(Task run, Task cancelling, CancellationTokenSource cancel)
    {
        await Task.WhenAll(run, cancelling).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _ = run.Exception;
        cancel.Dispose();
    }

    /// <summary>
    /// Whether a decoded task waits for its rate limit: a task over its rate is deferred (outside the prefetch window,
    /// as an ETA task is) into its bucket, which queues it for a slot when a token is free.
    /// </summary>
    private bool HoldForRateLimit(Request request, ChannelWriter<Request> writer, CancellationToken stop)
    {
        if (request.RateLimitPassed || _rateLimits.Find(request.Task!) is not { } bucket || bucket.TryPass())
        {
            return false;
        }

        request.Delivery.Defer();
        if (bucket.Hold(request with { RateLimitPassed = true }))
        {
            Track(_timers, bucket.PumpAsync(held => Track(_timers, DelayThenQueueAsync(held, DateTimeOffset.MinValue, writer, stop)), stop));
        }

        return true;
    }

    /// <summary>At shutdown, gives the tasks still waiting for a token back to the broker, as unstarted ETA tasks are.</summary>
    private async Task ReturnRateLimitedAsync()
    {
        await Task.WhenAll(_timers.Keys).ConfigureAwait(false);
        foreach (TaskBucket<Request> bucket in _rateLimits.Buckets)
        {
            foreach (Request held in bucket.TakeAll())
            {
                if (held.Delivery.TryClaim())
                {
                    await held.Delivery.RejectAsync(requeue: true, CancellationToken.None).ConfigureAwait(false);
                }

                held.Message?.Dispose();
            }
        }
    }

    /// <summary>Celery's <c>rate_limit</c> command: <c>{"task_name": ..., "rate_limit": "10/s" | 10 | null}</c>.</summary>
    private Dictionary<string, object?> OnRateLimitCommand(Control.ControlRequest request)
    {
        string name = request.Arguments.TryGetProperty("task_name", out JsonElement n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "";
        JsonElement rate = request.Arguments.TryGetProperty("rate_limit", out JsonElement r) ? r : default;
        if (!RateText.TryParse(rate, out double perSecond, out bool disables, out string? error))
        {
            Log.RateLimitRefused(_logger, name, error!);
            return Reply("error", error!);
        }

        if (!_app.Tasks.TryGet(name, out _))
        {
            Log.RateLimitUnknownTask(_logger, name);
            return Reply("error", "unknown task");
        }

        _rateLimits.Set(name, perSecond);
        if (disables)
        {
            Log.RateLimitDisabled(_logger, name);
            return Reply("ok", "rate limit disabled successfully");
        }

        Log.RateLimitSet(_logger, name, rate.ValueKind == JsonValueKind.String ? rate.GetString()! : rate.GetRawText());
        return Reply("ok", "new rate limit set successfully");
    }

    /// <summary>Celery's <c>time_limit</c> command: <c>{"task_name": ..., "soft": seconds | null, "hard": seconds | null}</c>.</summary>
    private Dictionary<string, object?> OnTimeLimitCommand(Control.ControlRequest request)
    {
        string name = request.Arguments.TryGetProperty("task_name", out JsonElement n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "";
        if (!_app.Tasks.TryGet(name, out _))
        {
            Log.TimeLimitUnknownTask(_logger, name);
            return Reply("error", "unknown task");
        }

        TimeSpan? soft = Seconds("soft");
        TimeSpan? hard = Seconds("hard");
        SetTimeLimits(name, soft, hard);
        Log.TimeLimitsSet(_logger, name, TimeLimits.Format(soft), TimeLimits.Format(hard));
        return Reply("ok", "time limits set successfully");

        TimeSpan? Seconds(string argument) =>
            request.Arguments.TryGetProperty(argument, out JsonElement v) && v.ValueKind == JsonValueKind.Number
            && v.TryGetDouble(out double s) && s > 0 && s <= TimeSpan.MaxValue.TotalSeconds / 2
                ? TimeSpan.FromSeconds(s)
                : null;
    }

    private static Dictionary<string, object?> Reply(string key, string value) => new(StringComparer.Ordinal) { [key] = value };
}
