using Microsoft.Extensions.Logging;
using Npgsql;

namespace Celeriac.Database;

/// <summary>
/// One LISTEN connection per backend: the task table's trigger NOTIFYs each written task id on commit (Python's
/// writes too), and each notification wakes that id's waiters. After a reconnect every waiter is woken to read again,
/// since notifications sent while it was down are lost.
/// </summary>
internal sealed class PostgresNotifications : IAsyncDisposable
{
    private readonly string _connectionString;
    private readonly string _channel;
    private readonly Action<string> _notified;
    private readonly Action _reconnected;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _loop;

    public PostgresNotifications(string connectionString, string channel, Action<string> notified, Action reconnected, ILogger logger)
    {
        _connectionString = connectionString;
        _channel = channel;
        _notified = notified;
        _reconnected = reconnected;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Completes once the first LISTEN is in place (a write after it is sure to be heard).</summary>
    public Task Listening => _listening.Task;

    private async Task RunAsync()
    {
        CancellationToken ct = _stop.Token;
        bool first = true;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var connection = new NpgsqlConnection(_connectionString + ";Pooling=false;Keepalive=10");
                await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable connectionScope = connection.ConfigureAwait(false);
                await connection.OpenAsync(ct).ConfigureAwait(false);
                connection.Notification += (_, e) => _notified(e.Payload);
                var listen = new NpgsqlCommand("LISTEN \"" + _channel.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"", connection);
                await using (listen.ConfigureAwait(false))
                {
                    await listen.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                _listening.TrySetResult();
                if (!first)
                {
                    _reconnected();
                }

                first = false;
                while (!ct.IsCancellationRequested)
                {
                    await connection.WaitAsync(ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Log.ListenFailed(_logger, e);
                first = false;
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Sends a notification nobody waits for (an empty task id) on the channel.</summary>
    private async Task WakeAsync()
    {
        try
        {
            var connection = new NpgsqlConnection(_connectionString);
            await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable connectionScope = connection.ConfigureAwait(false);
            await connection.OpenAsync().ConfigureAwait(false);
            var notify = new NpgsqlCommand("SELECT pg_notify($1, '')", connection);
            await using (notify.ConfigureAwait(false))
            {
                notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _channel });
                await notify.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            Log.ListenFailed(_logger, e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (TimeoutException)
        {
            // Npgsql's WaitAsync can miss a cancellation that comes just as it starts waiting: a notification wakes it,
            // and the loop sees it was stopped.
            await WakeAsync().ConfigureAwait(false);
            await _loop.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _listening.TrySetCanceled();
        _stop.Dispose();
    }
}
