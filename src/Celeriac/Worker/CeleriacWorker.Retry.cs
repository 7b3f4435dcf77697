using Celeriac.Diagnostics;
using Celeriac.Protocol;

namespace Celeriac.Worker;

/// <summary>Retries (Celery's <c>Task.retry</c>, <c>autoretry_for</c>): what the worker does with a task that asks for one.</summary>
public sealed partial class CeleriacWorker
{
    /// <summary>
    /// Runs the task. What it throws that asks for a retry (a <see cref="RetryException"/> not sent yet, or an
    /// <see cref="TaskOptions.AutoRetryFor"/> type) sends the retry and comes out as a sent <see cref="RetryException"/>;
    /// past <see cref="TaskOptions.MaxRetries"/> it comes out as the error that fails the task.
    /// </summary>
    private static async ValueTask<object?> InvokeAsync(CeleriacTask task, TaskMessage message, TaskContext context, IServiceProvider? services)
    {
        try
        {
            return await task.Invoker!.InvokeAsync(message, context, services).ConfigureAwait(false);
        }
        catch (RetryException retry) when (!retry.Sent)
        {
            throw await context.RetryAsync(retry.Reason, retry.Countdown, retry.Eta, retry.MaxRetries).ConfigureAwait(false);
        }
        catch (Exception ex) when (TaskRetry.IsAutoRetried(task.Options, ex) && !context.CancellationToken.IsCancellationRequested)
        {
            TimeSpan? countdown = TaskRetry.AutoRetryCountdown(task.Options, context.Retries, Random.Shared);
            throw await context.RetryAsync(ex, countdown).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The RETRY document of a task whose retry was sent, as Celery's <c>mark_as_retry</c> stores it: the reason as
    /// the result, the retry's traceback, the retry as its child; <see langword="null"/> when errors are not stored.
    /// </summary>
    private TaskResultMeta? Retried(TaskMessage message, RetryException retry, Request request, bool store)
    {
        TaskHeaders h = message.Headers;
        Log.TaskRetry(_logger, h.Task, h.Id, retry.Message);
        if (!store)
        {
            return null;
        }

        byte[] reason = retry.Reason is { } exc ? TaskResultMeta.SerializeException(Encode(exc)) : TaskResultMeta.SerializeValue(null);
        return Meta(message, TaskStates.Retry, reason, retry.ToString(), request, ready: false, children: TaskRetry.Children(h.Id));
    }
}
