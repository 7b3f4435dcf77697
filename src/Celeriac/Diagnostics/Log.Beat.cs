using Microsoft.Extensions.Logging;

namespace Celeriac.Diagnostics;

/// <summary>The lines of beat.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 150, Level = LogLevel.Information, Message = "beat: Starting... ({Holder}, store {Store}, max interval {MaxInterval} s, lease {Lease} s)")]
    public static partial void BeatStarting(ILogger logger, string holder, string store, double maxInterval, double lease);

    [LoggerMessage(EventId = 151, Level = LogLevel.Information, Message = "beat: holds the lease, sending ({Holder})")]
    public static partial void BeatLeader(ILogger logger, string holder);

    [LoggerMessage(EventId = 152, Level = LogLevel.Information, Message = "beat: another beat holds the lease; standing by ({Holder})")]
    public static partial void BeatStandby(ILogger logger, string holder);

    [LoggerMessage(EventId = 153, Level = LogLevel.Information, Message = "Scheduler: Sending due task {Entry} ({Task}) due {DueAt}")]
    public static partial void BeatSending(ILogger logger, string entry, string task, string dueAt);

    [LoggerMessage(EventId = 154, Level = LogLevel.Error, Message = "{Message}; beat goes on with the other entries")]
    public static partial void BeatBadEntry(ILogger logger, string message);

    [LoggerMessage(EventId = 155, Level = LogLevel.Warning, Message = "beat: {Entry} missed {Count} run(s) while no beat sent (catch-up {Policy})")]
    public static partial void BeatMissed(ILogger logger, string entry, int count, string policy);

    [LoggerMessage(EventId = 156, Level = LogLevel.Error, Message = "beat: run of {Entry} at {RunAt} recorded but not sent: {Error}")]
    public static partial void BeatSendFailed(ILogger logger, string entry, string runAt, string error);

    [LoggerMessage(EventId = 157, Level = LogLevel.Warning, Message = "beat: store {Store} unavailable ({Error}); trying again in {Delay} s")]
    public static partial void BeatStoreError(ILogger logger, string store, string error, double delay);

    [LoggerMessage(EventId = 158, Level = LogLevel.Information, Message = "beat: stopped; lease released ({Holder})")]
    public static partial void BeatStopped(ILogger logger, string holder);
}
