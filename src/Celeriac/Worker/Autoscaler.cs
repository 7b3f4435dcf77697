using Celeriac.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Celeriac.Worker;

/// <summary>
/// Celery's autoscaler (<c>--autoscale MAX,MIN</c>): once a second it grows the pool towards MAX to fit the requests
/// waiting for a slot, and shrinks it towards MIN when fewer are busy or waiting, but only after the pool has stayed
/// grown for the keep-alive (30 s), so that a burst does not make it flap.
/// </summary>
internal sealed class Autoscaler(CeleriacWorker worker, int max, int min, TimeSpan keepAlive, TimeProvider time, ILogger logger)
{
    private readonly Lock _gate = new();
    private int _max = max;
    private int _min = min;
    private DateTimeOffset _lastGrown = DateTimeOffset.MinValue;

    /// <summary>How often it looks. <value>1 second</value></summary>
    public static TimeSpan Interval { get; } = TimeSpan.FromSeconds(1);

    /// <summary>The most slots it grows to.</summary>
    public int Max
    {
        get
        {
            lock (_gate)
            {
                return _max;
            }
        }
    }

    /// <summary>The fewest slots it shrinks to.</summary>
    public int Min
    {
        get
        {
            lock (_gate)
            {
                return _min;
            }
        }
    }

    public void SetBounds(int newMax, int newMin)
    {
        lock (_gate)
        {
            _max = newMax;
            _min = newMin;
        }

        Scale();
    }

    public async Task RunAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                Scale();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The worker stops.
        }
    }

    /// <summary>One look: as Celery's <c>_maybe_scale</c>, the pool should fit the busy and waiting requests, within the bounds.</summary>
    public void Scale()
    {
        lock (_gate)
        {
            int current = worker.Concurrency;
            int wanted = Math.Clamp(worker.ActiveCount + worker.ReservedCount, _min, _max);
            DateTimeOffset now = time.GetUtcNow();
            if (wanted > current)
            {
                _lastGrown = now;
                Resize(current, wanted);
            }
            else if (wanted < current && now - _lastGrown >= keepAlive)
            {
                Resize(current, wanted);
            }
        }
    }

    private void Resize(int from, int to)
    {
        Log.Autoscaled(logger, from, to);
        worker.ResizePool(to, raiseMax: false);
    }
}
