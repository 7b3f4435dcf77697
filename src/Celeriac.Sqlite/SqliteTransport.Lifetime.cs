using Celeriac.Protocol;
using Celeriac.Transport;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Celeriac.Sqlite;

public sealed partial class SqliteTransport
{
    /// <inheritdoc />
    public async ValueTask<IAsyncDisposable> SubscribeAsync(string exchange, Func<TransportMessage, ValueTask> handler, SubscriberBinding? queue = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(exchange);
        ArgumentNullException.ThrowIfNull(handler);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_declared.TryAdd("fanout\n" + exchange, 0))
        {
            await _store.RunAsync(new WriteOp<bool>(c =>
            {
                DeclareExchange(c, exchange, "fanout");
                return true;
            })).ConfigureAwait(false);
        }

        // Start after the newest row: a subscriber gets what is published after it subscribed.
        long start = _store.Read(connection =>
        {
            using SqliteCommand max = connection.CreateCommand();
            max.CommandText = Schema.FanoutMax;
            return (long)max.ExecuteScalar()!;
        });
        var subscription = new FanoutSubscription(this, exchange, handler, start);
        _subscriptions.TryAdd(subscription, 0);
        return subscription;
    }

    /// <summary>
    /// Gives back every held, unsettled delivery, commits every pending publish and ack, then closes
    /// (the file closes when the last transport or backend of this process on it is disposed).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (FanoutSubscription s in _subscriptions.Keys)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }

        SqliteDelivery[] unsettled = [.. _held.Values.Where(d => !d.IsSettled)];
        try
        {
            await Task.WhenAll(unsettled.Select(d => d.RejectAsync(requeue: true).AsTask())).ConfigureAwait(false);

            // The writer runs ops in order: once this one committed, every earlier publish and ack has.
            await _store.RunAsync(new WriteOp<bool>(_ => true)).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }

        await _lifetime.CancelAsync().ConfigureAwait(false);
        await _renewer.ConfigureAwait(false);
        _closed = true;
        await _store.ReleaseAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Stops at once as if the process were killed: no renewal, nothing given back, nothing flushed.
    /// Only honest on a private store (<see cref="SqliteStore.OpenPrivate"/>); for tests.
    /// </summary>
    internal void Kill()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _closed = true;
        _lifetime.Cancel();
        foreach (FanoutSubscription s in _subscriptions.Keys)
        {
            s.Stop();
        }

        _store.Kill();
    }

    private sealed class SqliteDelivery(SqliteTransport owner, long id, string queue, TransportMessage? message, string? decodeError, bool redelivered, PrefetchWindow window)
        : Delivery(queue, message, decodeError, redelivered, window)
    {
        public long Id { get; } = id;

        protected override async ValueTask SettleAsync(bool? requeue, CancellationToken ct)
        {
            if (owner._closed)
            {
                // Already given back when the transport was disposed.
                return;
            }

            if (requeue == true)
            {
                await owner.GiveBackAsync(this).ConfigureAwait(false);
            }
            else
            {
                owner.Delete(this);
            }
        }
    }

    private sealed class FanoutSubscription : IAsyncDisposable
    {
        private readonly SqliteTransport _owner;
        private readonly string _exchange;
        private readonly Func<TransportMessage, ValueTask> _handler;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private long _last;

        public FanoutSubscription(SqliteTransport owner, string exchange, Func<TransportMessage, ValueTask> handler, long start)
        {
            _owner = owner;
            _exchange = exchange;
            _handler = handler;
            _last = start;
            _loop = Task.Run(RunAsync);
        }

        public void Stop() => _stop.Cancel();

        public async ValueTask DisposeAsync()
        {
            if (_owner._subscriptions.TryRemove(this, out _))
            {
                await _stop.CancelAsync().ConfigureAwait(false);
                await _loop.ConfigureAwait(false);
                _stop.Dispose();
            }
        }

        private async Task RunAsync()
        {
            var batch = new List<(long Seq, byte[] Payload)>();
            TimeSpan quiet = s_minQuiet;
            while (!_stop.IsCancellationRequested)
            {
                // Taken before the read, so that a commit during it is not missed: this process's fanout writes, and
                // any other process's commit (the store checks data_version while someone watches).
                Task wake = _owner._store.Fanout.WaitAsync();
                Task external = _owner._store.External.WaitAsync();
                _owner._store.WatchExternal();
                batch.Clear();
                try
                {
                    _owner._store.Read(ReadBatch);
                }
                catch (SqliteException ex)
                {
                    Log.SubscriberFailed(_owner._logger, _exchange, ex);
                }

                foreach ((long seq, byte[] payload) in batch)
                {
                    _last = seq;
                    if (!KombuEnvelope.TryDecode(payload, out TransportMessage? message, out string? error))
                    {
                        Log.BadFanoutMessage(_owner._logger, seq, _exchange, error ?? "unreadable");
                        continue;
                    }

                    try
                    {
                        await _handler(message!).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !_stop.IsCancellationRequested)
                    {
                        Log.SubscriberFailed(_owner._logger, _exchange, ex);
                    }
                }

                if (batch.Count > 0)
                {
                    quiet = s_minQuiet;
                    continue;
                }

                // Reading the table on a timer (every 250 ms when idle) was most of an idle worker's CPU: it is read
                // when something was committed, or when the store's watch needs renewing. Other processes' commits are
                // mostly not broadcasts, so while they keep coming, reads for them back off to one per 250 ms.
                long readAt = _owner._time.GetTimestamp();
                try
                {
                    await Task.WhenAny(wake, external, Task.Delay(s_watchRenewal, _owner._time, _stop.Token)).ConfigureAwait(false);
                    TimeSpan left = quiet - _owner._time.GetElapsedTime(readAt);
                    if (external.IsCompleted && !wake.IsCompleted && left > TimeSpan.Zero)
                    {
                        await Task.WhenAny(wake, Task.Delay(left, _owner._time, _stop.Token)).ConfigureAwait(false);
                    }
                }
                catch (OperationCanceledException)
                {
                }

                quiet = TimeSpan.FromTicks(Math.Min(quiet.Ticks * 2, s_maxQuiet.Ticks));
            }

            bool ReadBatch(SqliteConnection connection)
            {
                using SqliteCommand after = connection.CreateCommand();
                after.CommandText = Schema.FanoutAfter;
                after.Parameters.AddWithValue("$exchange", _exchange);
                after.Parameters.AddWithValue("$seq", _last);
                using SqliteDataReader reader = after.ExecuteReader();
                while (reader.Read())
                {
                    batch.Add((reader.GetInt64(0), reader.GetFieldValue<byte[]>(1)));
                }

                return true;
            }
        }
    }
}
