using Microsoft.Extensions.Logging;

namespace Celeriac.RabbitMQ;

/// <summary>The log lines of the RabbitMQ broker.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 500, Level = LogLevel.Error, Message = "Fanout subscriber of exchange '{Exchange}' failed")]
    public static partial void SubscriberFailed(ILogger logger, string exchange, Exception exception);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "Could not change the channel's prefetch (basic.qos)")]
    public static partial void QosFailed(ILogger logger, Exception exception);
}
