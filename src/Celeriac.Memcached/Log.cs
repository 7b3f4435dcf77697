using Microsoft.Extensions.Logging;

namespace Celeriac.Memcached;

/// <summary>The log lines of the memcached backend.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1640, Level = LogLevel.Error, Message = "memcached at {Server} is unreachable ({Reason}); retrying with back-off until it is back")]
    public static partial void Unreachable(ILogger logger, string server, string reason);

    [LoggerMessage(EventId = 1642, Level = LogLevel.Error, Message = "memcached at {Server} is unreachable ({Reason}); giving up after the connect timeout of {Seconds:F1} s if it does not answer")]
    public static partial void NeverReached(ILogger logger, string server, string reason, double seconds);

    [LoggerMessage(EventId = 1641, Level = LogLevel.Warning, Message = "memcached at {Server} is reachable again after {Seconds:F1} s")]
    public static partial void Reachable(ILogger logger, string server, double seconds);
}
