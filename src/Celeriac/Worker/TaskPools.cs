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
        PoolNames.Prefork => throw new CeleriacConfigurationException("The prefork pool is not available yet."),
        _ => new AsyncPool(size, app.Time, logger),
    };
}
