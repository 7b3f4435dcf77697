using System.Collections.Concurrent;
using Celeriac.Transport;
using Npgsql;

namespace Celeriac.PostgreSql;

/// <summary>
/// The one connection of a transport that LISTENs: it sleeps in <see cref="NpgsqlConnection.WaitAsync(CancellationToken)"/>
/// until a publisher's NOTIFY arrives, so an idle consumer sends no statement at all. Notifications of the messages
/// channel pulse the named queue's waiters; those of the fanout channel go to the subscribers. When the connection is
/// lost it reconnects with back-off, LISTENs again and pulses every waiter (a notification may have been missed).
/// </summary>
internal sealed class PgListener : IAsyncDisposable
{
    private readonly PgDatabase _db;
    private readonly ConcurrentDictionary<string, AsyncPulse> _queues = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<string> _onFanout;
    private readonly Action _onReconnect;
    private Task? _loop;

    public PgListener(PgDatabase db, Action<string> onFanout, Action onReconnect)
    {
        _db = db;
        _onFanout = onFanout;
        _onReconnect = onReconnect;
    }

    /// <summary>Starts listening (once) and completes when the first LISTEN is in place.</summary>
    public Task StartAsync(CancellationToken ct)
    {
        lock (_queues)
        {
            _loop ??= Task.Run(RunAsync, CancellationToken.None);
        }

        return _listening.Task.WaitAsync(ct);
    }

    /// <summary>The next wake-up of any of <paramref name="queues"/>: take it before looking, then wait on it.</summary>
    public Task WaitAnyAsync(string[] queues)
    {
        if (queues.Length == 1)
        {
            return Pulse(queues[0]).WaitAsync();
        }

        var tasks = new Task[queues.Length];
        for (int i = 0; i < queues.Length; i++)
        {
            tasks[i] = Pulse(queues[i]).WaitAsync();
        }

        return Task.WhenAny(tasks);
    }

    /// <summary>Wakes the waiters of <paramref name="queue"/> (this process published to it).</summary>
    public void Wake(string queue)
    {
        if (_queues.TryGetValue(queue, out AsyncPulse? pulse))
        {
            pulse.Pulse();
        }
    }

    private AsyncPulse Pulse(string queue) => _queues.GetOrAdd(queue, static _ => new AsyncPulse());

    private async Task RunAsync()
    {
        TimeSpan delay = TimeSpan.FromMilliseconds(50);
        bool lost = false;
        while (!_stop.IsCancellationRequested)
        {
            NpgsqlConnection? connection = null;
            try
            {
                connection = _db.DataSource.CreateConnection();
                await connection.OpenAsync(_stop.Token).ConfigureAwait(false);
                connection.Notification += OnNotification;
                using (var listen = new NpgsqlCommand($"LISTEN {Schema.MessagesChannel}; LISTEN {Schema.FanoutChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(_stop.Token).ConfigureAwait(false);
                }

                _listening.TrySetResult();
                if (lost)
                {
                    _db.MarkUp(fresh: true);
                    lost = false;

                    // Whatever was notified while the connection was down is looked at now.
                    foreach (AsyncPulse pulse in _queues.Values)
                    {
                        pulse.Pulse();
                    }

                    _onReconnect();
                }

                delay = TimeSpan.FromMilliseconds(50);
                while (!_stop.IsCancellationRequested)
                {
                    await connection.WaitAsync(_stop.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (PgDatabase.IsOutage(e) || e is InvalidOperationException or ObjectDisposedException)
            {
                lost = true;
                _db.MarkDown(e);
                _db.DataSource.Clear();
                try
                {
                    await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
            catch (Exception e) when (!_listening.Task.IsCompleted)
            {
                // Not an outage (a wrong password, a missing database): the first consumer or subscriber says so.
                _listening.TrySetException(e);
                break;
            }
            finally
            {
                if (connection is not null)
                {
                    connection.Notification -= OnNotification;
                    await connection.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Sends a notification nobody waits for (an empty queue name) on the messages channel.</summary>
    private async Task WakeListenerAsync()
    {
        try
        {
            NpgsqlConnection c = await _db.DataSource.OpenConnectionAsync().ConfigureAwait(false);
            await using (c.ConfigureAwait(false))
            {
                var notify = new NpgsqlCommand($"SELECT pg_notify('{Schema.MessagesChannel}', '')", c);
                await using (notify.ConfigureAwait(false))
                {
                    await notify.ExecuteNonQueryAsync().ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (PgDatabase.IsOutage(e))
        {
            // The server is away: the listening connection breaks by itself.
        }
    }

    private void OnNotification(object? sender, NpgsqlNotificationEventArgs e)
    {
        if (e.Channel == Schema.MessagesChannel)
        {
            Wake(e.Payload);
        }
        else if (e.Channel == Schema.FanoutChannel)
        {
            _onFanout(e.Payload);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        Task? loop;
        lock (_queues)
        {
            loop = _loop;
        }

        if (loop is not null)
        {
            try
            {
                await loop.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Npgsql's WaitAsync can miss a cancellation that comes just as it starts waiting (seen once in CI: a
                // transport's dispose hung for good): a notification wakes it, and the loop sees it was stopped.
                await WakeListenerAsync().ConfigureAwait(false);
                await loop.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
        }

        _stop.Dispose();
    }
}
