using Microsoft.Extensions.Logging;

namespace Celeriac.Diagnostics;

/// <summary>The lines of message signing.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 190, Level = LogLevel.Error, Message = "Refused a message from queue '{Queue}'{IdText}: {Reason}; not run, dropped (message signing is on)")]
    public static partial void MessageRefused(ILogger logger, string queue, string reason, string idText);
}
