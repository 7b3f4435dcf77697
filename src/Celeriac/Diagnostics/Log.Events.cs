using Microsoft.Extensions.Logging;

namespace Celeriac.Diagnostics;

/// <summary>The lines of the event dispatcher, the heartbeat and the event receiver.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "Could not send {Count} event(s) ({Type}); monitors miss them")]
    public static partial void EventsNotSent(ILogger logger, int count, string type, Exception exception);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "Event buffer full ({Limit} waiting for the broker): {Count} task event(s) dropped")]
    public static partial void EventsDropped(ILogger logger, int limit, long count);

    [LoggerMessage(EventId = 122, Level = LogLevel.Warning, Message = "Event skipped (routing key '{RoutingKey}'): {Reason}")]
    public static partial void BadEvent(ILogger logger, string routingKey, string reason);

    [LoggerMessage(EventId = 123, Level = LogLevel.Warning, Message = "Event receiver behind its reader: {Count} event(s) dropped (capacity {Capacity})")]
    public static partial void ReceiverDropped(ILogger logger, long count, int capacity);

    [LoggerMessage(EventId = 124, Level = LogLevel.Debug, Message = "Heartbeat requested by remote.")]
    public static partial void HeartbeatRequested(ILogger logger);
}
