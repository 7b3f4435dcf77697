namespace Celeriac.Concurrency;

/// <summary>
/// Gathers the writes made at about the same moment (acks, results) into one round trip: while one batch is on the
/// wire the next one fills, so a busy worker sends many per round trip and an idle one sends at once. Each caller
/// awaits its batch. Batches are sent in order, one at a time.
/// </summary>
/// <remarks>
/// The thread that sees a send finish starts the next batch's send, then continues the finished batch's callers, one
/// after the other: a busy batcher's callers go on while the next batch is already on the wire, without a thread
/// hand-off per batch. Public for the providers (the Redis and PostgreSQL transports batch their acks and results
/// with it).
/// </remarks>
/// <typeparam name="T">One write.</typeparam>
/// <param name="send">Sends one batch, in the order the items came.</param>
public sealed class Batcher<T>(Func<T[], Task> send)
{
    private readonly Lock _gate = new();
    private List<T> _pending = [];
    private TaskCompletionSource? _batch;
    private TaskCompletionSource? _idle;
    private bool _running;

    /// <summary>Adds an item to the next batch; completes when that batch has been sent.</summary>
    public Task Enqueue(T item)
    {
        Task batch;
        lock (_gate)
        {
            _pending.Add(item);
            _batch ??= new TaskCompletionSource();
            batch = _batch.Task;
            if (_running)
            {
                return batch;
            }

            _running = true;
        }

        // Sent from the thread pool rather than from this caller's thread: in the moment that takes, the writes of the
        // same burst join the batch (sending at once makes more, smaller batches: more round trips, not fewer hand-offs).
        _ = Task.Run(FlushAsync);
        return batch;
    }

    /// <summary>Completes when everything enqueued so far has been sent (or has failed).</summary>
    public Task DrainAsync()
    {
        lock (_gate)
        {
            if (!_running)
            {
                return Task.CompletedTask;
            }

            _idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _idle.Task;
        }
    }

    private async Task FlushAsync()
    {
        (TaskCompletionSource Batch, Exception? Error)? finished = null;
        while (true)
        {
            T[]? items = null;
            TaskCompletionSource? batch = null;
            TaskCompletionSource? idle = null;
            lock (_gate)
            {
                if (_pending.Count == 0)
                {
                    _running = false;
                    idle = _idle;
                    _idle = null;
                }
                else
                {
                    items = [.. _pending];
                    batch = _batch!;
                    _pending.Clear();
                    _batch = null;
                }
            }

            Task? sending = null;
            if (items is not null)
            {
                try
                {
                    sending = send(items);
                }
                catch (Exception e)
                {
                    sending = Task.FromException(e);
                }
            }

            // The next batch is on its way before the last one's callers go on.
            Complete(finished);
            if (sending is null)
            {
                idle?.TrySetResult();
                return;
            }

            Exception? error = null;
            try
            {
                await sending.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                error = e;
            }

            finished = (batch!, error);
        }
    }

    private static void Complete((TaskCompletionSource Batch, Exception? Error)? finished)
    {
        if (finished is not { } f)
        {
            return;
        }

        if (f.Error is null)
        {
            f.Batch.TrySetResult();
        }
        else
        {
            f.Batch.TrySetException(f.Error);
        }
    }
}
