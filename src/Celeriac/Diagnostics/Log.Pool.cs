using Microsoft.Extensions.Logging;

namespace Celeriac.Diagnostics;

/// <summary>Pools, autoscale and soft shutdown.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 80, Level = LogLevel.Warning, Message = "The {Pool} pool is Python's; Celeriac runs its async pool instead (tasks awaiting I/O already share threads)")]
    public static partial void PoolAlias(ILogger logger, string pool);

    [LoggerMessage(EventId = 81, Level = LogLevel.Warning, Message = "Soft shutdown: {Running} running task(s) still running after {Seconds}s; cold shutdown begins (late-acked ones go back to the queue)")]
    public static partial void SoftShutdownExpired(ILogger logger, int running, double seconds);

    [LoggerMessage(EventId = 82, Level = LogLevel.Information, Message = "Autoscale: pool {From} -> {To}")]
    public static partial void Autoscaled(ILogger logger, int from, int to);

    [LoggerMessage(EventId = 83, Level = LogLevel.Warning, Message = "Soft shutdown: waiting up to {Seconds}s for {Running} running task(s)")]
    public static partial void SoftShutdown(ILogger logger, int running, double seconds);

    [LoggerMessage(EventId = 84, Level = LogLevel.Warning, Message = "Task {Name}[{Id}] cut off by the soft shutdown's timeout: {Outcome}")]
    public static partial void TaskCut(ILogger logger, string name, string id, string outcome);

    [LoggerMessage(EventId = 85, Level = LogLevel.Error, Message = "Post-run step {Step} failed for task {Name}[{Id}]")]
    public static partial void StepFailed(ILogger logger, string step, string name, string id, Exception exception);
}
