using Microsoft.Extensions.Logging;

namespace Celeriac.Aws;

/// <summary>The log lines of the S3 and DynamoDB result backends.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1600, Level = LogLevel.Error, Message = "{Service} at {Endpoint} is unreachable ({Reason}); retrying with back-off for up to {Patience}")]
    public static partial void Unreachable(ILogger logger, string service, string endpoint, string reason, TimeSpan patience);

    [LoggerMessage(EventId = 1606, Level = LogLevel.Error, Message = "{Service} at {Endpoint} is unreachable ({Reason}); giving up after the connect timeout of {Seconds:F1} s if it does not answer")]
    public static partial void NeverReached(ILogger logger, string service, string endpoint, string reason, double seconds);

    [LoggerMessage(EventId = 1601, Level = LogLevel.Warning, Message = "{Service} at {Endpoint} is reachable again after {Seconds:F1} s")]
    public static partial void Reachable(ILogger logger, string service, string endpoint, double seconds);

    [LoggerMessage(EventId = 1602, Level = LogLevel.Information, Message = "DynamoDB table {Table} did not exist: created it (read {Read}, write {Write} capacity units)")]
    public static partial void TableCreated(ILogger logger, string table, int read, int write);

    [LoggerMessage(EventId = 1603, Level = LogLevel.Information, Message = "DynamoDB table {Table}: Time to Live {Action} on attribute '{Attribute}'")]
    public static partial void TimeToLiveUpdated(ILogger logger, string table, string action, string attribute);

    [LoggerMessage(EventId = 1605, Level = LogLevel.Warning, Message = "DynamoDB table {Table}: this store has no Time to Live API ({Reason}); expired results are ignored on read but not deleted")]
    public static partial void NoTimeToLive(ILogger logger, string table, string reason);

    [LoggerMessage(EventId = 1604, Level = LogLevel.Warning, Message = "Using local-only DynamoDB endpoint URL: {Endpoint}")]
    public static partial void LocalEndpoint(ILogger logger, string endpoint);
}
