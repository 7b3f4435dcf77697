using Microsoft.Extensions.Logging;

namespace Celeriac.RabbitMQ;

/// <summary>The log lines of the RabbitMQ broker.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 507, Level = LogLevel.Error, Message = "RabbitMQ at {Server} is unreachable ({Reason})")]
    public static partial void Unreachable(ILogger logger, string server, string reason);

    [LoggerMessage(EventId = 500, Level = LogLevel.Error, Message = "Fanout subscriber of exchange '{Exchange}' failed")]
    public static partial void SubscriberFailed(ILogger logger, string exchange, Exception exception);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "Could not change the channel's prefetch (basic.qos)")]
    public static partial void QosFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 502, Level = LogLevel.Error, Message = "RabbitMQ at {Server} did not confirm {Count} publish(es); sending them again when it is back")]
    public static partial void PublishWaiting(ILogger logger, string server, int count);

    [LoggerMessage(EventId = 503, Level = LogLevel.Warning, Message = "RabbitMQ at {Server} confirms publishes again")]
    public static partial void PublishingAgain(ILogger logger, string server);

    [LoggerMessage(EventId = 504, Level = LogLevel.Information, Message = "Parked a task of queue '{Queue}' held over {Seconds} s for its ETA: a copy is back in the queue, so the broker's consumer_timeout never closes the channel")]
    public static partial void Parked(ILogger logger, string queue, int seconds);

    [LoggerMessage(EventId = 505, Level = LogLevel.Warning, Message = "Could not park a task of queue '{Queue}'; it goes back to the queue")]
    public static partial void ParkFailed(ILogger logger, string queue, Exception exception);

    [LoggerMessage(EventId = 506, Level = LogLevel.Warning, Message = "Consumer channel lost ({Code} {Reason}); the broker redelivers what it held, {Withdrawn} waiting task(s) dropped here")]
    public static partial void ChannelLost(ILogger logger, int code, string reason, int withdrawn);
}
