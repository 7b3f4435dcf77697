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
}
