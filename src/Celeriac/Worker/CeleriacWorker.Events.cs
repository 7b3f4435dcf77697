using Celeriac.Diagnostics;
using Celeriac.Events;

namespace Celeriac.Worker;

/// <summary>
/// Events, as Celery's worker sends them: <c>worker-online</c>, a <c>worker-heartbeat</c> every
/// <see cref="CeleriacOptions.HeartbeatInterval"/> and <c>worker-offline</c> unless
/// <see cref="CeleriacOptions.WithoutHeartbeat"/>; task events with <see cref="CeleriacOptions.TaskEvents"/> (<c>-E</c>).
/// </summary>
public sealed partial class CeleriacWorker
{
    /// <summary>The worker's dispatcher, when it sends any event (created when remote control turns task events on).</summary>
    private EventDispatcher? _events;

    /// <summary>The same dispatcher when task events are on, else null: the hot path checks only this.</summary>
    private volatile EventDispatcher? _taskEvents;

    /// <summary>Whether this worker sends task events now (<c>-E</c>, or remote control's <c>enable_events</c>).</summary>
    public bool TaskEventsEnabled => _taskEvents is not null;

    /// <summary>
    /// <c>task-received</c> for a request just decoded. As Celery's strategy, a task revoked or expired on arrival gets
    /// only its <c>task-revoked</c>, sent when the worker skips it.
    /// </summary>
    private void OnReceived(EventDispatcher events, WorkerRequest request)
    {
        Protocol.TaskMessage message = request.Message!;
        if (_revoked.Contains(message.Headers.Id) || message.Headers.Expires is { } expires && expires <= _app.Time.GetUtcNow())
        {
            return;
        }

        TaskEvents.Received(events, message);
    }

    /// <summary>Sends <c>worker-online</c>, then a heartbeat every interval on the app's clock until <paramref name="stop"/>.</summary>
    private async Task HeartAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(_app.Options.HeartbeatInterval, _app.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                await SendWorkerEventAsync("worker-heartbeat", stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The worker stops; worker-offline follows once its tasks are done.
        }
    }

    /// <summary>A worker event now; a broker that refuses it is logged (monitors see the next one), never fatal.</summary>
    private async ValueTask SendWorkerEventAsync(string type, CancellationToken ct)
    {
        if (_events is not { } events || _app.Options.WithoutHeartbeat)
        {
            return;
        }

        try
        {
            await WorkerEvents.SendAsync(events, type, _app.Options.HeartbeatInterval.TotalSeconds, _registry.ActiveCount, Processed, ct).ConfigureAwait(false);
            NoteHeartbeat();
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Log.EventsNotSent(_logger, 1, type, ex);
        }
    }

    /// <summary>
    /// At the end of a run: the last task events, then <c>worker-offline</c>, so that a monitor sees the worker's tasks
    /// end before the worker leaves (a task event after it would bring the worker back to life in Celery's state).
    /// </summary>
    private async Task StopEventsAsync(CancellationTokenSource heartStop, Task heart)
    {
        await heartStop.CancelAsync().ConfigureAwait(false);
        await heart.ConfigureAwait(false);
        if (_events is not { } events)
        {
            return;
        }

        await events.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await SendWorkerEventAsync("worker-offline", patience.Token).ConfigureAwait(false);
    }

    /// <summary>Celery's <c>heartbeat</c> command (what an event receiver broadcasts as it starts): a heartbeat now.</summary>
    private async ValueTask OnHeartbeatCommandAsync()
    {
        Log.HeartbeatRequested(_logger);
        await SendWorkerEventAsync("worker-heartbeat", CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Stops the heartbeat however the run ends, so that a worker that failed does not beat on.</summary>
    private sealed class CancelOnExit(CancellationTokenSource source) : IDisposable
    {
        public void Dispose() => source.Cancel();
    }
}
