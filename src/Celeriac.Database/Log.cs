using Microsoft.Extensions.Logging;

namespace Celeriac.Database;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "The database result backend could not add its NOTIFY trigger to {Table}; waiting polls instead")]
    public static partial void TriggerFailed(ILogger logger, string table, Exception exception);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "The database result backend's LISTEN connection failed; reconnecting")]
    public static partial void ListenFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "The database result backend could not delete expired results")]
    public static partial void CleanupFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4, Level = LogLevel.Error, Message = "{Store} is unreachable ({Reason}); giving up after the connect timeout of {Seconds} s if it does not answer")]
    public static partial void StoreNeverReached(ILogger logger, string store, string reason, double seconds);

    [LoggerMessage(EventId = 5, Level = LogLevel.Error, Message = "{Store} is unreachable ({Reason}); retrying with back-off for up to {Patience}")]
    public static partial void StoreDown(ILogger logger, string store, string reason, TimeSpan patience);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "{Store} is back after {Outage}")]
    public static partial void StoreBack(ILogger logger, string store, TimeSpan outage);
}
