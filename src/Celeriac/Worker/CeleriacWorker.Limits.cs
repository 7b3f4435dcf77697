using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Celeriac.Diagnostics;
using Celeriac.Protocol;

namespace Celeriac.Worker;

/// <summary>Time limits and rate limits (Celery's <c>time_limit</c>, <c>soft_time_limit</c> and <c>rate_limit</c>).</summary>
public sealed partial class CeleriacWorker
{
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

    /// <summary>
    /// Whether a decoded task waits for its rate limit: a task over its rate is deferred (outside the prefetch window,
    /// as an ETA task is) into its bucket, which queues it for a slot when a token is free.
    /// </summary>
    private bool HoldForRateLimit(WorkerRequest request, ChannelWriter<WorkerRequest> writer, CancellationToken stop)
    {
        if (request.RateLimitPassed || _rateLimits.Find(request.Task!) is not { } bucket || bucket.TryPass())
        {
            return false;
        }

        request.RateLimitPassed = true;
        _registry.Schedule(request, null);
        request.Delivery.Defer();
        if (bucket.Hold(request))
        {
            Track(_timers, bucket.PumpAsync(held => Track(_timers, DelayThenQueueAsync(held, DateTimeOffset.MinValue, writer, stop)), stop));
        }

        return true;
    }

    /// <summary>At shutdown, gives the tasks still waiting for a token back to the broker, as unstarted ETA tasks are.</summary>
    private async Task ReturnRateLimitedAsync()
    {
        await Task.WhenAll(_timers.Keys).ConfigureAwait(false);
        foreach (TaskBucket<WorkerRequest> bucket in _rateLimits.Buckets)
        {
            foreach (WorkerRequest held in bucket.TakeAll())
            {
                await GiveBackAsync(held).ConfigureAwait(false);
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
        _rateTexts[name] = disables ? null : rate.ValueKind == JsonValueKind.String ? rate.GetString() : rate.GetRawText();
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
