using Microsoft.Extensions.Logging;

namespace Celeriac.Diagnostics;

/// <summary>The worker's time-limit and rate-limit lines, in Celery's words.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "Soft time limit ({Seconds}s) exceeded for {Name}[{Id}]")]
    public static partial void SoftTimeLimitExceeded(ILogger logger, string seconds, string name, string id);

    [LoggerMessage(EventId = 61, Level = LogLevel.Error, Message = "Hard time limit ({Seconds}s) exceeded for {Name}[{Id}]")]
    public static partial void HardTimeLimitExceeded(ILogger logger, string seconds, string name, string id);

    [LoggerMessage(EventId = 62, Level = LogLevel.Information, Message = "New rate limit for tasks of type {Name}: {Rate}.")]
    public static partial void RateLimitSet(ILogger logger, string name, string rate);

    [LoggerMessage(EventId = 63, Level = LogLevel.Information, Message = "Rate limits disabled for tasks of type {Name}")]
    public static partial void RateLimitDisabled(ILogger logger, string name);

    [LoggerMessage(EventId = 64, Level = LogLevel.Error, Message = "Rate limit attempt for unknown task {Name}")]
    public static partial void RateLimitUnknownTask(ILogger logger, string name);

    [LoggerMessage(EventId = 65, Level = LogLevel.Information, Message = "New time limits for tasks of type {Name}: soft={Soft} hard={Hard}")]
    public static partial void TimeLimitsSet(ILogger logger, string name, string soft, string hard);

    [LoggerMessage(EventId = 66, Level = LogLevel.Error, Message = "Change time limit attempt for unknown task {Name}")]
    public static partial void TimeLimitUnknownTask(ILogger logger, string name);

    [LoggerMessage(EventId = 67, Level = LogLevel.Error, Message = "Rate limit command for {Name} refused: {Error}")]
    public static partial void RateLimitRefused(ILogger logger, string name, string error);
}
