using Microsoft.Extensions.Logging;

namespace Celeriac.Diagnostics;

/// <summary>The prefork pool's children, as the parent and the children see them.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 90, Level = LogLevel.Error, Message = "Pool child {Pid} failed to start ({Reason}); starting another in {Seconds}s. Its stderr ended with: {Tail}")]
    public static partial void ChildStartFailed(ILogger logger, int pid, string reason, double seconds, string tail);

    [LoggerMessage(EventId = 91, Level = LogLevel.Debug, Message = "Pool child {Pid} ready")]
    public static partial void ChildReady(ILogger logger, int pid);

    [LoggerMessage(EventId = 92, Level = LogLevel.Error, Message = "Pool child {Pid} exited prematurely while running {Name}[{Id}]: {Reason}")]
    public static partial void ChildLost(ILogger logger, int pid, string name, string id, string reason);

    [LoggerMessage(EventId = 93, Level = LogLevel.Warning, Message = "Pool child {Pid} exited while idle: {Reason}; starting another")]
    public static partial void ChildExitedIdle(ILogger logger, int pid, string reason);

    [LoggerMessage(EventId = 94, Level = LogLevel.Warning, Message = "Pool child {Pid} killed: hard time limit ({Seconds}s) of {Name}[{Id}]")]
    public static partial void ChildKilledAtHardLimit(ILogger logger, int pid, string seconds, string name, string id);

    [LoggerMessage(EventId = 95, Level = LogLevel.Information, Message = "Pool child {Pid} replaced after {Tasks} task(s) (max tasks per child)")]
    public static partial void ChildMaxTasks(ILogger logger, int pid, int tasks);

    [LoggerMessage(EventId = 96, Level = LogLevel.Warning, Message = "Pool child {Pid} replaced: it holds {Resident} KiB, above the max memory per child of {Limit} KiB")]
    public static partial void ChildMaxMemory(ILogger logger, int pid, long resident, long limit);

    [LoggerMessage(EventId = 97, Level = LogLevel.Error, Message = "Pool child {Pid} broke the pool protocol ({Error}); killing it")]
    public static partial void ChildBadFrame(ILogger logger, int pid, string error);

    [LoggerMessage(EventId = 98, Level = LogLevel.Information, Message = "Pool child {Pid} killed: {Name}[{Id}] was terminated or cut off by a cold shutdown")]
    public static partial void ChildKilledCancelled(ILogger logger, int pid, string name, string id);

    [LoggerMessage(EventId = 99, Level = LogLevel.Error, Message = "Pool child: a request it cannot read ({Error})")]
    public static partial void ChildBadRequest(ILogger logger, string error);
}
