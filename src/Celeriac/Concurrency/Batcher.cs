namespace Celeriac.Concurrency;

/// <summary>
/// Gathers the writes made at about the same moment (acks, results) into one round trip: while one batch is on the
/// wire the next one fills, so a busy worker sends many per round trip and an idle one sends at once. Each caller
/// awaits its batch. Batches are sent in order, one at a time.
/// </summary>
/// <remarks>
/// A batch's callers continue one after the other in one thread-pool work item, not each in its own (a work item per
/// caller is a thread hand-off per task) and not on the sending thread, which goes on with the next batch. Public for
/// the providers (the Redis and PostgreSQL transports batch their acks and results with it).
/// </remarks>
/// <typeparam name="T">One write.</typeparam>
/// <param name="send">Sends one batch, in the order the items came.</param>
public sealed class Batcher<T>(Func<T[], Task> send)
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
            _batch ??= new TaskCompletionSource();
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
                ThreadPool.UnsafeQueueUserWorkItem(static b => b.TrySetResult(), batch, preferLocal: false);
            }
            catch (Exception e)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static s => s.Batch.TrySetException(s.Error), (Batch: batch, Error: e), preferLocal: false);
            }
        }
    }
}
