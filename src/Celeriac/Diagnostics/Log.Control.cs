using Microsoft.Extensions.Logging;

namespace Celeriac.Diagnostics;

/// <summary>The lines of remote control: the worker's commands, mingle, and the client's reply queue.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 130, Level = LogLevel.Warning, Message = "Reply queue {Queue} could not be read; waiting calls get the replies that came")]
    public static partial void ControlRepliesLost(ILogger logger, string queue, Exception exception);

    [LoggerMessage(EventId = 131, Level = LogLevel.Error, Message = "pidbox command error: {Method}: {Error}")]
    public static partial void ControlCommandFailed(ILogger logger, string method, string error);

    [LoggerMessage(EventId = 132, Level = LogLevel.Warning, Message = "{Message}")]
    public static partial void RemoteShutdown(ILogger logger, string message);

    [LoggerMessage(EventId = 133, Level = LogLevel.Information, Message = "Consuming from queue {Queue} (add_consumer)")]
    public static partial void ConsumerAdded(ILogger logger, string queue);

    [LoggerMessage(EventId = 134, Level = LogLevel.Information, Message = "No longer consuming from queue {Queue} (cancel_consumer)")]
    public static partial void ConsumerCancelled(ILogger logger, string queue);

    [LoggerMessage(EventId = 135, Level = LogLevel.Information, Message = "Events of group {{task}} {State} by remote.")]
    public static partial void TaskEventsSwitched(ILogger logger, string state);

    [LoggerMessage(EventId = 136, Level = LogLevel.Information, Message = "mingle: sync with {Count} node(s): {Nodes}")]
    public static partial void MingleSynced(ILogger logger, int count, string nodes);

    [LoggerMessage(EventId = 137, Level = LogLevel.Information, Message = "mingle: all alone")]
    public static partial void MingleAlone(ILogger logger);

    [LoggerMessage(EventId = 138, Level = LogLevel.Warning, Message = "mingle: could not ask the other workers ({Error}); revokes made before this start may not hold here")]
    public static partial void MingleFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 139, Level = LogLevel.Information, Message = "sync with {Node}")]
    public static partial void SyncWith(ILogger logger, string node);
}
