using Celeriac.Concurrency;
using Celeriac.Diagnostics;
using Celeriac.Results;
using Microsoft.Extensions.Logging;

namespace Celeriac.Worker;

/// <summary>
/// The first post-run step: stores the outcome as Celery stores it (SUCCESS, FAILURE, RETRY, REVOKED), or nothing for
/// an ignored result, a rejected message, or a lost task going back to the queue.
/// </summary>
internal sealed class StoreResultStep(IResultBackend backend, ResultDocuments documents, ILogger logger) : IPostRunStep
{
    public ValueTask AfterRunAsync(FinishedTask task, CancellationToken ct)
    {
        TaskResultMeta? meta = Document(task);
        return meta is null ? ValueTask.CompletedTask : StoreAsync(meta, ct);
    }

    /// <summary>Stores a document; a store that fails is logged (the task's outcome stands).</summary>
    public ValueTask StoreAsync(TaskResultMeta meta, CancellationToken ct)
    {
        ValueTask store;
        try
        {
            store = backend.StoreAsync(meta, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.StoreFailed(logger, meta.Extended?.Name ?? "?", meta.TaskId, ex);
            return ValueTask.CompletedTask;
        }

        return store.IsCompletedSuccessfully ? ValueTask.CompletedTask : AwaitAsync(store, meta);
    }

    private async ValueTask AwaitAsync(ValueTask store, TaskResultMeta meta)
    {
        try
        {
            await store.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.StoreFailed(logger, meta.Extended?.Name ?? "?", meta.TaskId, ex);
        }
    }

    private TaskResultMeta? Document(FinishedTask task)
    {
        TaskOutcome o = task.Outcome;
        bool errors = task.StoreResult || task.StoreErrors;
        return o.Kind switch
        {
            TaskOutcomeKind.Succeeded when task.StoreResult => documents.Meta(task.Message, task.Queue, TaskStates.Success, o.Result!, null, children: task.ChildrenJson()),
            TaskOutcomeKind.Failed or TaskOutcomeKind.TimeLimitExceeded when errors =>
                documents.Meta(task.Message, task.Queue, TaskStates.Failure, o.Result!, o.Traceback, children: task.ChildrenJson()),
            TaskOutcomeKind.Retried when errors =>
                documents.Meta(task.Message, task.Queue, TaskStates.Retry, o.Result!, o.Traceback, ready: false, children: TaskRetry.Children(task.Id)),
            TaskOutcomeKind.WorkerLost or TaskOutcomeKind.ShutdownCut when errors && task.Settlement != Settlement.Requeue =>
                documents.Meta(task.Message, task.Queue, TaskStates.Failure, TaskResultMeta.SerializeException(ResultDocuments.WorkerLost(o.Reason)), null),
            TaskOutcomeKind.Revoked => documents.Revoked(task.Message, task.Queue, o.Reason ?? "revoked"),
            _ => null,
        };
    }
}
