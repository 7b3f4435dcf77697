using Microsoft.Extensions.Logging;

namespace Celeriac.RabbitMQ;

/// <summary>The log lines of the RabbitMQ broker.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 500, Level = LogLevel.Error, Message = "Fanout subscriber of exchange '{Exchange}' failed")]
    public static partial void SubscriberFailed(ILogger logger, string exchange, Exception exception);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "Could not change the channel's prefetch (basic.qos)")]
    public static partial void QosFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 502, Level = LogLevel.Error, Message = "RabbitMQ at {Server} did not confirm {Count} publish(es); sending them again when it is back")]
    public static partial void PublishWaiting(ILogger logger, string server, int count);

    [LoggerMessage(EventId = 503, Level = LogLevel.Warning, Message = "RabbitMQ at {Server} confirms publishes again")]
    public static partial void PublishingAgain(ILogger logger, string server);
}
