using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;

namespace Celeriac.Worker;

/// <summary>Celery's rate strings (<c>celery.utils.time.rate</c>): <c>"100/s"</c>, <c>"10/m"</c>, <c>"1000/h"</c>, or a number per second.</summary>
internal static class RateText
{
    /// <summary>
    /// Reads a rate as tasks per second; 0 means no limit (an empty string, null, or zero, as Celery's <c>rate(r) or 0</c>).
    /// On bad input returns <see langword="false"/> and the error Celery's <c>rate_limit</c> command replies with.
    /// </summary>
    public static bool TryParse(string? text, out double perSecond, out string? error)
    {
        perSecond = 0;
        error = null;
        if (string.IsNullOrEmpty(text))
        {
            return true;
        }

        int slash = text.IndexOf('/', StringComparison.Ordinal);
        string ops = slash < 0 ? text : text[..slash];
        string modifier = slash < 0 ? "" : text[(slash + 1)..];
        if (!double.TryParse(ops.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double count))
        {
            error = $"Invalid rate limit string: ValueError(\"could not convert string to float: '{ops}'\")";
            return false;
        }

        double per = modifier switch
        {
            "" or "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => double.NaN,
        };
        if (double.IsNaN(per))
        {
            error = $"KeyError('{modifier}')";
            return false;
        }

        if (!double.IsFinite(count) || count < 0)
        {
            error = $"Invalid rate limit string: ValueError(\"a rate is a number of tasks, 0 or more: '{ops}'\")";
            return false;
        }

        perSecond = count / per;
        return true;
    }

    /// <summary>Reads the <c>rate_limit</c> argument of the remote-control command: a string, a number or null.</summary>
    public static bool TryParse(JsonElement value, out double perSecond, out bool disables, out string? error)
    {
        disables = value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined or JsonValueKind.False
            || value.ValueKind == JsonValueKind.String && value.GetString()!.Length == 0
            || value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double zero) && zero == 0;
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                return TryParse(value.GetString(), out perSecond, out error);
            case JsonValueKind.Number:
                return TryParse(value.GetRawText(), out perSecond, out error);
            default:
                perSecond = 0;
                error = disables ? null : $"Invalid rate limit string: TypeError(\"not a rate: {value.GetRawText()}\")";
                return error is null;
        }
    }
}

/// <summary>
/// The per-task rate limits of one worker, as Celery's consumer keeps them (<c>task_buckets</c>): one token bucket
/// per limited task name. A task over its rate waits in its bucket (<typeparamref name="T"/> is what the worker
/// holds), in order, until a token is free; the rate can change at run time and held tasks follow it at once.
/// </summary>
internal sealed class RateLimiter<T>
{
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<string, TaskBucket<T>> _buckets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, double> _setAtRunTime = new(StringComparer.Ordinal);

    public RateLimiter(TimeProvider time) => _time = time;

    /// <summary>The buckets made so far (to give their held tasks back at shutdown).</summary>
    public ICollection<TaskBucket<T>> Buckets => _buckets.Values;

    /// <summary>Checks the rate limits of the registered tasks: a bad one is a configuration error.</summary>
    public void Validate(TaskRegistry tasks)
    {
        foreach (string name in tasks.Names)
        {
            if (tasks.TryGet(name, out CeleriacTask? task))
            {
                _ = RateOf(task);
            }
        }
    }

    /// <summary>The bucket of a limited task, or <see langword="null"/> when it runs unlimited.</summary>
    public TaskBucket<T>? Find(CeleriacTask task)
    {
        if (_buckets.TryGetValue(task.Name, out TaskBucket<T>? bucket))
        {
            return bucket.IsLimited ? bucket : null;
        }

        lock (_gate)
        {
            bucket = _buckets.GetOrAdd(task.Name, static (_, state) => new TaskBucket<T>(state.Self.RateOf(state.Task), state.Self._time), (Self: this, Task: task));
        }

        return bucket.IsLimited ? bucket : null;
    }

    /// <summary>Sets a task's rate at run time (tasks per second, 0 for none); it replaces the task's own option.</summary>
    public void Set(string taskName, double perSecond)
    {
        lock (_gate)
        {
            _setAtRunTime[taskName] = perSecond;
            if (_buckets.TryGetValue(taskName, out TaskBucket<T>? bucket))
            {
                bucket.SetRate(perSecond);
            }
            else if (perSecond > 0)
            {
                _buckets[taskName] = new TaskBucket<T>(perSecond, _time);
            }
        }
    }

    private double RateOf(CeleriacTask task)
    {
        if (_setAtRunTime.TryGetValue(task.Name, out double rate))
        {
            return rate;
        }

        if (!RateText.TryParse(task.Options.RateLimit, out rate, out _))
        {
            throw new CeleriacConfigurationException(
                $"Task '{task.Name}' has an invalid rate limit '{task.Options.RateLimit}': use \"N/s\", \"N/m\", \"N/h\" or a number per second.");
        }

        return rate;
    }
}

/// <summary>
/// One task's token bucket and the tasks it holds. Like kombu's <c>TokenBucket</c> it holds one token: after an idle
/// spell one task goes at once, then one per interval. A token that fell due while the timer was late is not lost
/// (up to half an interval, at most 50 ms), so the rate holds on a busy machine.
/// </summary>
internal sealed class TaskBucket<T>
{
    private readonly Lock _gate = new();
    private readonly Queue<T> _held = new();
    private readonly TimeProvider _time;
    private long _interval;
    private long _next;
    private bool _pumping;
    private TaskCompletionSource? _changed;

    public TaskBucket(double perSecond, TimeProvider time)
    {
        _time = time;
        _next = time.GetTimestamp();
        _interval = IntervalOf(perSecond);
    }

    /// <summary>Whether it limits (a rate of 0 releases everything it holds and lets tasks through).</summary>
    public bool IsLimited => Volatile.Read(ref _interval) > 0;

    /// <summary>How many tasks wait in it.</summary>
    public int HeldCount
    {
        get
        {
            lock (_gate)
            {
                return _held.Count;
            }
        }
    }

    /// <summary>Queues a task; returns <see langword="true"/> when no pump runs, so the caller starts <see cref="PumpAsync"/>.</summary>
    public bool Hold(T item)
    {
        lock (_gate)
        {
            _held.Enqueue(item);
            if (_pumping)
            {
                return false;
            }

            _pumping = true;
            return true;
        }
    }

    /// <summary>Takes a token for a task that arrives when none is held; <see langword="false"/> when it must wait.</summary>
    public bool TryPass()
    {
        lock (_gate)
        {
            return _held.Count == 0 && TryTake(out _);
        }
    }

    /// <summary>Takes every held task out (at shutdown, to give them back to the broker).</summary>
    public List<T> TakeAll()
    {
        lock (_gate)
        {
            var all = new List<T>(_held);
            _held.Clear();
            return all;
        }
    }

    /// <summary>Changes the rate; held tasks follow it at once. The bucket starts full, as a new kombu bucket does.</summary>
    public void SetRate(double perSecond)
    {
        TaskCompletionSource? changed;
        lock (_gate)
        {
            Volatile.Write(ref _interval, IntervalOf(perSecond));
            _next = _time.GetTimestamp();
            changed = _changed;
            _changed = null;
        }

        changed?.TrySetResult();
    }

    /// <summary>
    /// Releases held tasks one per token through <paramref name="release"/> (which must not block or throw) until none is held
    /// or <paramref name="stop"/>; what is still held at a stop stays for <see cref="TakeAll"/>.
    /// </summary>
    public async Task PumpAsync(Action<T> release, CancellationToken stop)
    {
        bool ended = false;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                T item;
                TimeSpan wait;
                Task changed;
                lock (_gate)
                {
                    if (!_held.TryPeek(out item!))
                    {
                        _pumping = false;
                        ended = true;
                        return;
                    }

                    if (TryTake(out wait))
                    {
                        _held.Dequeue();
                        changed = Task.CompletedTask;
                    }
                    else
                    {
                        changed = (_changed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                    }
                }

                if (wait <= TimeSpan.Zero)
                {
                    release(item);
                    continue;
                }

                using var timer = CancellationTokenSource.CreateLinkedTokenSource(stop);
                Task delay = Task.Delay(wait, _time, timer.Token);
                await Task.WhenAny(delay, changed).ConfigureAwait(false);
                await timer.CancelAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            if (!ended)
            {
                lock (_gate)
                {
                    _pumping = false;
                }
            }
        }
    }

    private bool TryTake(out TimeSpan wait)
    {
        wait = TimeSpan.Zero;
        long interval = _interval;
        if (interval == 0)
        {
            return true;
        }

        long now = _time.GetTimestamp();
        if (now >= _next)
        {
            long tolerance = Math.Min(interval / 2, _time.TimestampFrequency / 20);
            _next = Math.Max(_next, now - tolerance) + interval;
            return true;
        }

        // Whole milliseconds, rounded up: a timer that fires early would only spin.
        double ms = Math.Ceiling((_next - now) * 1000.0 / _time.TimestampFrequency);
        wait = TimeSpan.FromMilliseconds(Math.Clamp(ms, 1, TimeSpan.FromDays(1).TotalMilliseconds));
        return false;
    }

    private long IntervalOf(double perSecond)
    {
        if (perSecond <= 0)
        {
            return 0;
        }

        double ticks = _time.TimestampFrequency / perSecond;
        return ticks >= long.MaxValue / 4 ? long.MaxValue / 4 : Math.Max(1, (long)ticks);
    }
}
