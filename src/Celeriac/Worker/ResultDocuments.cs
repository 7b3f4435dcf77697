using Celeriac.Protocol;

namespace Celeriac.Worker;

/// <summary>Builds Celery's result documents for a worker's tasks (extended fields when <c>result_extended</c> is on).</summary>
internal sealed class ResultDocuments(CeleriacApp app, string node)
{
    /// <summary>
    /// Celery's <c>WorkerLostError</c>, as a killed child or a cold shutdown leaves a task; <paramref name="reason"/> as
    /// billiard words it (<c>signal 9 (SIGKILL)</c>, <c>exitcode 1</c>, or <c>cold shutdown</c>).
    /// </summary>
    public static ExceptionInfo WorkerLost(string? reason) => new("WorkerLostError", $"Worker exited prematurely: {reason ?? "cold shutdown"}.", "billiard.exceptions");

    public TaskResultMeta Meta(TaskMessage message, string queue, string state, ReadOnlyMemory<byte> result, string? traceback, bool ready = true, byte[]? children = null)
    {
        TaskHeaders h = message.Headers;
        return new TaskResultMeta
        {
            TaskId = h.Id,
            Status = state,
            Result = result,
            Traceback = traceback,
            Children = children ?? TaskResultMeta.NoChildren,
            DateDone = ready ? app.Time.GetUtcNow() : null,
            GroupId = h.Group,
            ParentId = h.ParentId,
            Extended = app.Options.ResultExtended
                ? new ResultExtension(h.Task, RawJson(message.Args), RawJson(message.Kwargs), node, h.Retries, queue)
                : null,
            ReplyTo = message.Transport.ReplyTo,
        };
    }

    /// <summary>A state a running task reports (Celery's <c>update_state</c>): ready only for a ready state.</summary>
    public TaskResultMeta State(TaskMessage message, string queue, string state, object? meta) =>
        Meta(message, queue, state, TaskResultMeta.SerializeValue(meta), null, ready: TaskStates.IsReady(state));

    /// <summary>Celery's REVOKED result: <c>TaskRevokedError</c> with the reason (revoked, expired or terminated).</summary>
    public TaskResultMeta Revoked(TaskMessage message, string queue, string reason) =>
        Meta(message, queue, TaskStates.Revoked, TaskResultMeta.SerializeException(new ExceptionInfo("TaskRevokedError", reason, "celery.exceptions")), null);

    /// <summary>A failure stored for a message that never became a task (bad input, unknown task).</summary>
    public TaskResultMeta Failure(string id, ExceptionInfo error, string? replyTo) => new()
    {
        TaskId = id,
        Status = TaskStates.Failure,
        Result = TaskResultMeta.SerializeException(error),
        DateDone = app.Time.GetUtcNow(),
        ReplyTo = replyTo,
    };

    private static byte[] RawJson(System.Text.Json.JsonElement e) => System.Text.Encoding.UTF8.GetBytes(e.GetRawText());
}
