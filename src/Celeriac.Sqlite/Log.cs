using Microsoft.Extensions.Logging;

namespace Celeriac.Sqlite;

/// <summary>The log lines of the SQLite broker and backend.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Error, Message = "SQLite write to {Path} failed")]
    public static partial void WriteFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 301, Level = LogLevel.Debug, Message = "SQLite file {Path} is busy; retry {Attempt}")]
    public static partial void Busy(ILogger logger, string path, int attempt);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "Could not renew the leases of {Count} held message(s) in {Path}")]
    public static partial void RenewFailed(ILogger logger, int count, string path, Exception exception);

    [LoggerMessage(EventId = 303, Level = LogLevel.Error, Message = "Could not settle message {Id} in {Path}")]
    public static partial void SettleFailed(ILogger logger, long id, string path, Exception exception);

    [LoggerMessage(EventId = 304, Level = LogLevel.Error, Message = "Fanout subscriber of exchange '{Exchange}' failed")]
    public static partial void SubscriberFailed(ILogger logger, string exchange, Exception exception);

    [LoggerMessage(EventId = 305, Level = LogLevel.Warning, Message = "Undecodable fanout message {Seq} on exchange '{Exchange}' skipped: {Reason}")]
    public static partial void BadFanoutMessage(ILogger logger, long seq, string exchange, string reason);
}
