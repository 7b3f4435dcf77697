using Microsoft.Extensions.Logging;

namespace Celeriac.Azure;

/// <summary>The log lines of the Azure Block Blob backend.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1640, Level = LogLevel.Error, Message = "Azure Blob storage at {Endpoint} is unreachable ({Reason}); retrying with back-off for up to {Patience:F0} s")]
    public static partial void Unreachable(ILogger logger, string endpoint, string reason, double patience);

    [LoggerMessage(EventId = 1643, Level = LogLevel.Error, Message = "Azure Blob storage at {Endpoint} is unreachable ({Reason}); giving up after the connect timeout of {Seconds:F1} s if it does not answer")]
    public static partial void NeverReached(ILogger logger, string endpoint, string reason, double seconds);

    [LoggerMessage(EventId = 1641, Level = LogLevel.Warning, Message = "Azure Blob storage at {Endpoint} is reachable again")]
    public static partial void Reachable(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 1642, Level = LogLevel.Information, Message = "Azure Blob container '{Container}' created at {Endpoint}")]
    public static partial void ContainerCreated(ILogger logger, string container, string endpoint);
}
