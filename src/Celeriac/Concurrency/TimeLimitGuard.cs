using Celeriac.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Celeriac.Concurrency;

/// <summary>
/// Applies a job's time limits to a run in this process. At the soft limit the task's token is cancelled, so it can
/// clean up; a failure after that is <c>SoftTimeLimitExceeded</c>. At the hard limit the token is cancelled too and the
/// caller stops waiting: the run is <c>TimeLimitExceeded</c> at once. .NET cannot stop a thread, so code that ignores the
/// token goes on in the background until it returns; what it returns is discarded.
/// </summary>
internal static class TimeLimitGuard
{
    private static readonly Task s_never = new TaskCompletionSource().Task;

    /// <summary>
    /// Runs <paramref name="start"/> within the job's limits. <paramref name="abandoned"/> is called when the hard limit
    /// leaves the code behind (a pool that runs it on a thread of its own replaces that thread).
    /// </summary>
    public static async ValueTask<TaskOutcome> RunAsync(
        PoolJob job, Func<CancellationToken, Task<TaskOutcome>> start, Action? abandoned, TimeProvider time, ILogger logger, CancellationToken ct)
    {
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task cancelling = Task.CompletedTask;
        Task<TaskOutcome> run = start(cancel.Token);
        bool softExceeded = false;
        using (var timers = new CancellationTokenSource())
        {
            Task soft = job.SoftTimeLimit is { } s ? Task.Delay(TimeSpan.FromSeconds(s), time, timers.Token) : s_never;
            Task hard = job.HardTimeLimit is { } h ? Task.Delay(TimeSpan.FromSeconds(h), time, timers.Token) : s_never;
            try
            {
                while (!run.IsCompleted)
                {
                    Task first = await Task.WhenAny(run, soft, hard).ConfigureAwait(false);
                    if (first == soft)
                    {
                        softExceeded = true;
                        Log.SoftTimeLimitExceeded(logger, TaskOutcome.FormatSeconds(job.SoftTimeLimit!.Value), job.TaskName, job.TaskId);

                        // Cancelled off this thread: the task's continuations must not run (or block) here.
                        cancelling = cancel.CancelAsync();
                        soft = s_never;
                    }
                    else if (first == hard)
                    {
                        Log.HardTimeLimitExceeded(logger, TaskOutcome.FormatSeconds(job.HardTimeLimit!.Value), job.TaskName, job.TaskId);
                        if (!cancel.IsCancellationRequested)
                        {
                            cancelling = cancel.CancelAsync();
                        }

                        _ = AbandonAsync(run, cancelling, cancel);
                        abandoned?.Invoke();
                        return TaskOutcome.TimeLimit(job.HardTimeLimit.Value);
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
        TaskOutcome outcome = await run.ConfigureAwait(false);
        return softExceeded && outcome.Kind == TaskOutcomeKind.Failed ? outcome.AsSoftTimeLimitExceeded() : outcome;
    }

    /// <summary>Waits in the background for code left behind at a hard limit, and discards its outcome.</summary>
    private static async Task AbandonAsync(Task run, Task cancelling, CancellationTokenSource cancel)
    {
        await Task.WhenAll(run, cancelling).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _ = run.Exception;
        cancel.Dispose();
    }
}
