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
        ThreadPool.UnsafeQueueUserWorkItem(static batcher => batcher.SendNext(null), this, preferLocal: false);
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

    /// <summary>
    /// Sends the pending batch, if any; then continues <paramref name="finished"/>'s callers. The next send's own
    /// continuation is in place before they go on, so a caller that waits for a later batch (even blocking) is answered.
    /// </summary>
    private void SendNext(Finished? finished)
    {
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

            if (items is null)
            {
                Complete(finished);
                idle?.TrySetResult();
                return;
            }

            Task sending;
            try
            {
                sending = send(items);
            }
            catch (Exception e)
            {
                sending = Task.FromException(e);
            }

            if (sending.IsCompleted)
            {
                Complete(finished);
                finished = new Finished(batch!, sending);
                continue;
            }

            var next = new Finished(batch!, sending);
            sending.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(() => SendNext(next));
            Complete(finished);
            return;
        }
    }

    private sealed record Finished(TaskCompletionSource Batch, Task Sent);

    private static void Complete(Finished? finished)
    {
        if (finished is null)
        {
            return;
        }

        if (finished.Sent.IsCompletedSuccessfully)
        {
            finished.Batch.TrySetResult();
        }
        else
        {
            finished.Batch.TrySetException(finished.Sent.Exception?.InnerExceptions ?? [new TaskCanceledException(finished.Sent)]);
        }
    }
}
