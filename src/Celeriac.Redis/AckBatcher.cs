namespace Celeriac.Redis;

/// <summary>
/// Gathers the tags settled at about the same moment into one command: while one batch is on the wire the
/// next one fills, so a busy worker acks many messages per round trip and an idle one acks at once.
/// Each caller awaits its batch.
/// </summary>
internal sealed class AckBatcher(Func<string[], Task> send)
{
    private readonly Lock _gate = new();
    private List<string> _pending = [];
    private TaskCompletionSource? _batch;
    private Task _flushing = Task.CompletedTask;
    private bool _running;

    /// <summary>Adds a tag to the next batch; completes when that batch has been sent.</summary>
    public Task Enqueue(string tag)
    {
        lock (_gate)
        {
            _pending.Add(tag);
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
            List<string> tags;
            TaskCompletionSource batch;
            lock (_gate)
            {
                if (_pending.Count == 0)
                {
                    _running = false;
                    return;
                }

                tags = _pending;
                batch = _batch!;
                _pending = [];
                _batch = null;
            }

            try
            {
                await send([.. tags]).ConfigureAwait(false);
                batch.TrySetResult();
            }
            catch (Exception e)
            {
                batch.TrySetException(e);
            }
        }
    }
}
