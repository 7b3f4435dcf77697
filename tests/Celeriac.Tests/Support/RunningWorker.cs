using Celeriac.Worker;

namespace Celeriac.Tests.Support;

/// <summary>An app with a worker running on its own in-process broker; disposing stops both (warm).</summary>
internal sealed class RunningWorker : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _abort = new();

    private RunningWorker(CeleriacApp app, CeleriacWorker worker, Task run)
    {
        App = app;
        Worker = worker;
        Run = run;
    }

    public CeleriacApp App { get; }

    public CeleriacWorker Worker { get; }

    public Task Run { get; private set; }

    public CancellationTokenSource StopSource => _stop;

    public CancellationTokenSource AbortSource => _abort;

    /// <summary>A fresh app on <c>memory://&lt;unique&gt;</c> (broker and results), configured by the caller.</summary>
    public static CeleriacApp NewApp(Action<CeleriacOptions>? configure = null)
    {
        var options = new CeleriacOptions { BrokerUrl = "memory://" + Guid.NewGuid().ToString("N"), Concurrency = 4 };
        configure?.Invoke(options);
        return new CeleriacApp(options);
    }

    /// <summary>Starts a worker on an app whose tasks are registered, and waits until it consumes.</summary>
    public static async Task<RunningWorker> StartAsync(CeleriacApp app)
    {
        var worker = new CeleriacWorker(app);
        var holder = new RunningWorker(app, worker, Task.CompletedTask);
        holder.Run = Task.Run(() => worker.RunAsync(holder._stop.Token, holder._abort.Token));
        await Task.WhenAny(worker.Ready, holder.Run).WaitAsync(TimeSpan.FromSeconds(10));
        if (holder.Run.IsFaulted)
        {
            await holder.Run;
        }

        return holder;
    }

    /// <summary>Warm shutdown: stop consuming, finish running tasks; returns when the worker has stopped.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    public async ValueTask DisposeAsync()
    {
        if (!Run.IsCompleted)
        {
            await _stop.CancelAsync();
            try
            {
                await Run.WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                await _abort.CancelAsync();
            }
        }

        await App.DisposeAsync();
        _stop.Dispose();
        _abort.Dispose();
    }
}
