namespace Celeriac.Redis;

/// <summary>
/// Gathers the writes made at about the same moment (acks, results) into one round trip: while one batch is on the
/// wire the next one fills, so a busy worker sends many per round trip and an idle one sends at once. Each caller
/// awaits its batch. Batches are sent in order, one at a time.
/// </summary>
/// <remarks>
/// Callers continue on the thread pool, not on the sending thread: a caller may be a worker's slot, which would
/// otherwise run its next task there and hold every later batch up.
/// </remarks>
internal sealed class Batcher<T>(Func<T[], Task> send)
{
    private readonly Lock _gate = new();
    private List<T> _pending = [];
    private TaskCompletionSource? _batch;
    private Task _flushing = Task.CompletedTask;
    private bool _running;

    /// <summary>Adds an item to the next batch; completes when that batch has been sent.</summary>
    public Task Enqueue(T item)
    {
        lock (_gate)
        {
            _pending.Add(item);
            _batch ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_running)
            {
                _running = true;
                _flushing = Task.Run(FlushAsync);
            }

            return _batch.Task;
        }
    }

    /// <summary>Completes when everything enqueued so far has been sent (or has failed).</summary>
    public Task DrainAsync()
    {
        lock (_gate)
        {
            return _flushing;
        }
    }

    private async Task FlushAsync()
    {
        while (true)
        {
            List<T> items;
            TaskCompletionSource batch;
            lock (_gate)
            {
                if (_pending.Count == 0)
                {
                    _running = false;
                    return;
                }

                items = _pending;
                batch = _batch!;
                _pending = [];
                _batch = null;
            }

            try
            {
                await send([.. items]).ConfigureAwait(false);
                batch.TrySetResult();
            }
            catch (Exception e)
            {
                batch.TrySetException(e);
            }
        }
    }
}
