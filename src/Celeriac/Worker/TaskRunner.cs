using System.Diagnostics;
using Celeriac.Concurrency;
using Celeriac.Protocol;
using Celeriac.Results;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac.Worker;

/// <summary>
/// Runs a task's code in this process and turns what it did into a <see cref="TaskOutcome"/>: binds its arguments (in
/// a DI scope of its own when it needs one), sends the retries it asks for, and raises the task's signals where it
/// runs, as Celery's child processes do. It never throws for what the task did. Every pool that runs code in this
/// process uses it, and so does a prefork child.
/// </summary>
internal sealed class TaskRunner(CeleriacApp app, string node)
{
    /// <summary>
    /// Runs <paramref name="message"/>'s task. <paramref name="token"/> is the task's (cancelled by its limits, a
    /// terminate, a cold stop); <paramref name="abort"/> tells a cold stop apart, which makes the outcome
    /// <see cref="TaskOutcomeKind.WorkerLost"/>. <paramref name="resultJson"/>: whether a success's value is wanted as
    /// JSON (to store or log it).
    /// </summary>
    public async ValueTask<TaskOutcome> RunAsync(
        TaskMessage message, CeleriacTask task, string queue, bool resultJson,
        ITaskStateStore? storeState, CancellationToken token, CancellationToken abort)
    {
        TaskHeaders h = message.Headers;
        var context = new TaskContext(message, queue, node, token, storeState) { Definition = task };
        TaskContext.SetCurrent(context);
        CeleriacSignals signals = app.Signals;
        bool signal = signals.HasTaskHandlers;
        if (signal)
        {
            signals.OnTaskPrerun(this, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context });
        }

        long start = Stopwatch.GetTimestamp();
        TaskOutcome outcome;
        try
        {
            object? value = await InvokeAsync(task, context).ConfigureAwait(false);
            byte[]? children = context.ChildrenJson();
            outcome = resultJson || children is not null
                ? new TaskOutcome
                {
                    Kind = TaskOutcomeKind.Succeeded,
                    Result = TaskResultMeta.SerializeValue(value),
                    Value = value,
                    Children = children,
                    Runtime = Stopwatch.GetElapsedTime(start).TotalSeconds,
                    SignalsRaised = true,
                }
                : TaskOutcome.Quiet;
            if (signal)
            {
                var done = new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context, State = TaskStates.Success, Result = value };
                signals.OnTaskSuccess(this, done);
                signals.OnTaskPostrun(this, done);
            }
        }
        catch (RejectException reject)
        {
            // Celery's Reject: no state is stored; the message is dropped (dead-lettered) or given back.
            signals.OnTaskRejected(this, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context, Exception = reject, Reason = reject.Message });
            outcome = new TaskOutcome { Kind = TaskOutcomeKind.Rejected, Requeue = reject.Requeue, Reason = reject.Message, Exception = reject, SignalsRaised = true };
        }
        catch (IgnoreException ignore)
        {
            outcome = new TaskOutcome { Kind = TaskOutcomeKind.Ignored, Reason = ignore.Message, Exception = ignore, Children = context.ChildrenJson(), SignalsRaised = true };
        }
        catch (RetryException retry)
        {
            // As Celery's mark_as_retry stores it: the reason as the result, the retry's traceback.
            signals.OnTaskRetry(this, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context, Exception = retry.InnerException ?? retry, Reason = retry.Message });
            if (signal)
            {
                signals.OnTaskPostrun(this, new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context, State = TaskStates.Retry });
            }

            outcome = new TaskOutcome
            {
                Kind = TaskOutcomeKind.Retried,
                Result = retry.Reason is { } exc ? TaskResultMeta.SerializeException(Encode(exc)) : TaskResultMeta.SerializeValue(null),
                Traceback = retry.ToString(),
                Reason = retry.Message,
                Exception = retry,
                Runtime = Stopwatch.GetElapsedTime(start).TotalSeconds,
                SignalsRaised = true,
            };
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            outcome = TaskOutcome.Lost("cold shutdown");
        }
        catch (Exception ex)
        {
            ExceptionInfo error = Encode(ex);
            outcome = new TaskOutcome
            {
                Kind = TaskOutcomeKind.Failed,
                Result = TaskResultMeta.SerializeException(error),
                Children = context.ChildrenJson(),
                Traceback = ex.ToString(),
                ErrorType = error.Type,
                ErrorMessage = error.Message,
                ErrorModule = error.Module,
                LogStack = ex is not TaskArgumentException,
                Exception = ex,
                Runtime = Stopwatch.GetElapsedTime(start).TotalSeconds,
                SignalsRaised = true,
            };
            if (signal)
            {
                var done = new TaskSignalEventArgs { TaskId = h.Id, TaskName = h.Task, Queue = queue, Context = context, State = TaskStates.Failure, Exception = ex };
                signals.OnTaskFailure(this, done);
                signals.OnTaskPostrun(this, done);
            }
        }

        return outcome;
    }

    /// <summary>How a .NET exception travels: argument errors as Python's TypeError, so Python callers see theirs.</summary>
    public static ExceptionInfo Encode(Exception ex) => ex switch
    {
        TaskArgumentException => new ExceptionInfo("TypeError", ex.Message, "builtins"),
        _ => ExceptionInfo.From(ex),
    };

    /// <summary>Binds and runs the task's code (with its retries) in a DI scope of its own when it needs one.</summary>
    private ValueTask<object?> InvokeAsync(CeleriacTask task, TaskContext context) =>
        task.Invoker!.NeedsServices && app.Options.Services is { } services
            ? InvokeInScopeAsync(task, context, services)
            : InvokeWithRetriesAsync(task, context, app.Options.Services);

    private static async ValueTask<object?> InvokeInScopeAsync(CeleriacTask task, TaskContext context, IServiceProvider services)
    {
        AsyncServiceScope scope = services.CreateAsyncScope();
        await using (scope.ConfigureAwait(false))
        {
            return await InvokeWithRetriesAsync(task, context, scope.ServiceProvider).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Runs the task. What it throws that asks for a retry (a <see cref="RetryException"/> not sent yet, or an
    /// <see cref="TaskOptions.AutoRetryFor"/> type) sends the retry and comes out as a sent <see cref="RetryException"/>;
    /// past <see cref="TaskOptions.MaxRetries"/> it comes out as the error that fails the task.
    /// </summary>
    private static async ValueTask<object?> InvokeWithRetriesAsync(CeleriacTask task, TaskContext context, IServiceProvider? services)
    {
        try
        {
            return await task.Invoker!.InvokeAsync(context.Message, context, services).ConfigureAwait(false);
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
}
