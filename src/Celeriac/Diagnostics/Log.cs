using Microsoft.Extensions.Logging;

namespace Celeriac.Diagnostics;

/// <summary>The log lines of the worker and client, in Celery's words.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Task {Name}[{Id}] received")]
    public static partial void TaskReceived(ILogger logger, string name, string id);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Task {Name}[{Id}] succeeded in {Seconds}s: {Result}")]
    public static partial void TaskSucceeded(ILogger logger, string name, string id, string seconds, string result);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Task {Name}[{Id}] raised unexpected: {ExceptionType}('{ExceptionMessage}')")]
    public static partial void TaskFailed(ILogger logger, string name, string id, string exceptionType, string exceptionMessage, Exception? exception);

    [LoggerMessage(EventId = 4, Level = LogLevel.Error, Message = "Received unregistered task of type '{Name}' (id {Id}): stored FAILURE NotRegistered and dropped the message")]
    public static partial void UnknownTask(ILogger logger, string name, string id);

    [LoggerMessage(EventId = 5, Level = LogLevel.Error, Message = "Invalid message from queue '{Queue}' dropped: {Reason}{IdText}")]
    public static partial void InvalidMessage(ILogger logger, string queue, string reason, string idText);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Task {Name}[{Id}] expired at {Expires}: revoked without running")]
    public static partial void TaskExpired(ILogger logger, string name, string id, string expires);

    // Information, as .NET hosts log their lifecycle (and Celery logs 'ready.'); on its own category, so that the CLI,
    // whose default level is Celery's WARNING, can still show it.
    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "{Node} ready.")]
    public static partial void WorkerReady(ILogger logger, string node);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Warm shutdown: finishing {Running} running task(s), returning {Prefetched} prefetched message(s)")]
    public static partial void WarmShutdown(ILogger logger, int running, int prefetched);

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "Cold shutdown: cancelling {Running} running task(s)")]
    public static partial void ColdShutdown(ILogger logger, int running);

    [LoggerMessage(EventId = 10, Level = LogLevel.Error, Message = "Could not store the result of task {Name}[{Id}]")]
    public static partial void StoreFailed(ILogger logger, string name, string id, Exception exception);

    [LoggerMessage(EventId = 11, Level = LogLevel.Critical, Message = "Consumer error on {Broker}; retrying in {Delay}s")]
    public static partial void ConsumerError(ILogger logger, string broker, double delay, Exception exception);

    [LoggerMessage(EventId = 12, Level = LogLevel.Error, Message = "Internal error handling task {Name}[{Id}]")]
    public static partial void InternalError(ILogger logger, string name, string id, Exception exception);

    [LoggerMessage(EventId = 13, Level = LogLevel.Information, Message = "Tasks flagged as revoked: {Ids}")]
    public static partial void TasksRevoked(ILogger logger, string ids);

    [LoggerMessage(EventId = 14, Level = LogLevel.Information, Message = "Discarding revoked task: {Name}[{Id}]")]
    public static partial void TaskRevoked(ILogger logger, string name, string id);

    [LoggerMessage(EventId = 15, Level = LogLevel.Warning, Message = "Remote control message that is not a pidbox request ignored")]
    public static partial void BadControlMessage(ILogger logger);

    [LoggerMessage(EventId = 16, Level = LogLevel.Warning, Message = "Remote control command '{Method}' is unknown")]
    public static partial void UnknownControlCommand(ILogger logger, string method);

    [LoggerMessage(EventId = 17, Level = LogLevel.Error, Message = "Could not acknowledge task {Name}[{Id}]; the broker will deliver it again")]
    public static partial void AckFailed(ILogger logger, string name, string id, Exception exception);

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Task {Name}[{Id}] terminated (revoked with terminate)")]
    public static partial void TaskTerminated(ILogger logger, string name, string id);

    [LoggerMessage(EventId = 31, Level = LogLevel.Information, Message = "Loaded {Count} revoked task id(s) from the state file {Path}")]
    public static partial void StateDbLoaded(ILogger logger, string path, int count);

    [LoggerMessage(EventId = 32, Level = LogLevel.Error, Message = "The state file {Path} cannot be read; starting with no revoked ids")]
    public static partial void StateDbUnreadable(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 33, Level = LogLevel.Error, Message = "The state file {Path} cannot be written; revoked ids will not survive a restart")]
    public static partial void StateDbUnwritable(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 34, Level = LogLevel.Information, Message = "Task {Name}[{Id}] rejected by itself (requeue: {Requeue}): {Reason}")]
    public static partial void TaskRejected(ILogger logger, string name, string id, bool requeue, string reason);

    [LoggerMessage(EventId = 40, Level = LogLevel.Error, Message = "consumer: Cannot connect to {Url}: {Reason}. Trying again in {Seconds:F2} seconds... ({Attempt}/{MaxRetries})")]
    public static partial void CannotConnect(ILogger logger, string url, string reason, double seconds, int attempt, int maxRetries);

    [LoggerMessage(EventId = 39, Level = LogLevel.Error, Message = "Task {Name} cannot be built: {Reason}")]
    public static partial void TaskCannotBeBuilt(ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 35, Level = LogLevel.Error, Message = "A handler of the signal {Signal} failed")]
    public static partial void SignalHandlerFailed(ILogger logger, string signal, Exception exception);

    [LoggerMessage(EventId = 36, Level = LogLevel.Information, Message = "Task {Name}[{Id}] retry: {Reason}")]
    public static partial void TaskRetry(ILogger logger, string name, string id, string reason);

    [LoggerMessage(EventId = 37, Level = LogLevel.Warning, Message = "Task {Name}[{Id}] lost what ran it (WorkerLostError: a cold shutdown, or a pool child that died): {Outcome}")]
    public static partial void TaskLost(ILogger logger, string name, string id, string outcome);

    [LoggerMessage(EventId = 38, Level = LogLevel.Error, Message = "Task {Name}[{Id}] ignored its cancellation for {Seconds}s after the cold shutdown: abandoned (its code may still run)")]
    public static partial void TaskAbandoned(ILogger logger, string name, string id, double seconds);

    [LoggerMessage(EventId = 100, Level = LogLevel.Error, Message = "Task {Name}[{Id}] succeeded or failed, but the worker could not {What}")]
    public static partial void CanvasFailed(ILogger logger, string name, string id, string what, Exception exception);

    [LoggerMessage(EventId = 101, Level = LogLevel.Error, Message = "Chord {GroupId} raised: {Reason}")]
    public static partial void ChordFailed(ILogger logger, string groupId, string reason, Exception? exception);
}
