using Celeriac.Concurrency;
using Microsoft.Extensions.Logging;

namespace Celeriac.Worker;

/// <summary>Creates the pool an app's options name (Celery's <c>-P</c>).</summary>
internal static class TaskPools
{
    public static ITaskPool Create(CeleriacApp app, int size, ILogger logger) => PoolNames.Canonical(app.Options.Pool) switch
    {
        PoolNames.Threads => new ThreadsPool(size, app.Time, logger),
        PoolNames.Solo => new AsyncPool(1, app.Time, logger, solo: true),
        PoolNames.Prefork => CreatePrefork(app, size, logger),
        _ => new AsyncPool(size, app.Time, logger),
    };

    private static PreforkPool CreatePrefork(CeleriacApp app, int size, ILogger logger)
    {
        // A child that ran a worker of its own would start children of its own, and so on.
        if (PreforkPool.IsChildProcess)
        {
            throw new CeleriacConfigurationException(
                $"This process is a prefork pool child ({PreforkPool.ChildVariable} is set): its entry point must serve its parent with PoolChild.RunAsync, not start a worker.");
        }

        var options = new PreforkPoolOptions { MaxTasksPerChild = app.Options.MaxTasksPerChild, MaxMemoryPerChild = app.Options.MaxMemoryPerChild };
        return new PreforkPool(size, options, app.Time, logger);
    }
}
