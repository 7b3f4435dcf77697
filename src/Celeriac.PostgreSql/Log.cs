using Microsoft.Extensions.Logging;

namespace Celeriac.PostgreSql;

/// <summary>The log lines of the PostgreSQL broker.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 700, Level = LogLevel.Warning, Message = "PostgreSQL at {Server} is unreachable ({Reason}); retrying with back-off until it is back")]
    public static partial void Unreachable(ILogger logger, string server, string reason);

    [LoggerMessage(EventId = 701, Level = LogLevel.Information, Message = "PostgreSQL at {Server} is reachable again after {Seconds:F1} s")]
    public static partial void Reachable(ILogger logger, string server, double seconds);

    [LoggerMessage(EventId = 702, Level = LogLevel.Error, Message = "Fanout subscriber of exchange '{Exchange}' failed")]
    public static partial void SubscriberFailed(ILogger logger, string exchange, Exception exception);

    [LoggerMessage(EventId = 703, Level = LogLevel.Warning, Message = "Undecodable fanout message on exchange '{Exchange}' skipped: {Reason}")]
    public static partial void BadFanoutMessage(ILogger logger, string exchange, string reason);

    [LoggerMessage(EventId = 704, Level = LogLevel.Error, Message = "Could not settle {Count} message(s) in {Server}")]
    public static partial void SettleFailed(ILogger logger, int count, string server, Exception exception);

    [LoggerMessage(EventId = 705, Level = LogLevel.Warning, Message = "Could not renew the leases of {Count} held message(s) in {Server}: {Reason}")]
    public static partial void RenewFailed(ILogger logger, int count, string server, string reason);
}
