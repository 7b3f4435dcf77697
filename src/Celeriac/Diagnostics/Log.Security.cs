using Microsoft.Extensions.Logging;

namespace Celeriac.Diagnostics;

/// <summary>The lines of message signing.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 190, Level = LogLevel.Error, Message = "Refused a message from queue '{Queue}'{IdText}: {Reason}; not run, dropped (message signing is on)")]
    public static partial void MessageRefused(ILogger logger, string queue, string reason, string idText);

    [LoggerMessage(EventId = 191, Level = LogLevel.Warning, Message = "Refused a remote-control {What}: {Reason}; ignored")]
    public static partial void ControlMessageRefused(ILogger logger, string what, string reason);
}
