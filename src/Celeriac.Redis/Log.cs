using Microsoft.Extensions.Logging;

namespace Celeriac.Redis;

/// <summary>The log lines of the Redis broker and backend.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 400, Level = LogLevel.Error, Message = "Redis at {Server} is unreachable ({Reason}); retrying with back-off until it is back")]
    public static partial void Unreachable(ILogger logger, string server, string reason);

    [LoggerMessage(EventId = 407, Level = LogLevel.Error, Message = "Redis at {Server} is unreachable ({Reason}); giving up after the connect timeout of {Seconds:F1} s if it does not answer")]
    public static partial void NeverReached(ILogger logger, string server, string reason, double seconds);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Redis at {Server} is reachable again after {Seconds:F1} s")]
    public static partial void Reachable(ILogger logger, string server, double seconds);

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "Restored {Count} unacknowledged message(s) of dead consumers (held longer than the visibility timeout of {Timeout})")]
    public static partial void Restored(ILogger logger, int count, TimeSpan timeout);

    [LoggerMessage(EventId = 403, Level = LogLevel.Error, Message = "Fanout subscriber of exchange '{Exchange}' failed")]
    public static partial void SubscriberFailed(ILogger logger, string exchange, Exception exception);

    [LoggerMessage(EventId = 404, Level = LogLevel.Warning, Message = "Undecodable fanout message on channel '{Channel}' skipped: {Reason}")]
    public static partial void BadFanoutMessage(ILogger logger, string channel, string reason);

    [LoggerMessage(EventId = 405, Level = LogLevel.Warning, Message = "Message published to exchange '{Exchange}' with routing key '{RoutingKey}' matched no bound queue and was dropped")]
    public static partial void Unroutable(ILogger logger, string exchange, string routingKey);

    [LoggerMessage(EventId = 406, Level = LogLevel.Error, Message = "Could not restore the unacknowledged message {Tag}")]
    public static partial void RestoreFailed(ILogger logger, string tag, Exception exception);

    // The reason names the broker and says what to set (BrokerTls).
    [LoggerMessage(EventId = 420, Level = LogLevel.Error, Message = "{Reason}")]
    public static partial void TlsFailed(ILogger logger, string reason);
}
