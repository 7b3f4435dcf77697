using System.Data.Common;
using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Celeriac.Database;

/// <summary>
/// Runs the backend's statements through outages of its server. While the server has never answered, an operation
/// gives up after the connect timeout with <see cref="BrokerUnreachableException"/> (a wrong address fails fast and
/// clearly); once it has answered, a restart is waited for with back-off up to the operation's patience, so that a
/// worker's results are not lost to it. The outage is logged once when it starts and once when it ends.
/// </summary>
internal sealed class DatabaseOutage(string display, TimeSpan connectTimeout, ILogger logger)
{
    /// <summary>How long a read waits for a server that answered before (a restart), as the other stores wait.</summary>
    public static readonly TimeSpan ReadPatience = TimeSpan.FromSeconds(60);

    /// <summary>How long a write (a worker's result) waits for a server that answered before.</summary>
    public static readonly TimeSpan WritePatience = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan s_maxDelay = TimeSpan.FromSeconds(2);
    private readonly Lock _gate = new();
    private volatile bool _reached;
    private long _downSince;

    /// <summary>
    /// Opens a connection and runs <paramref name="operation"/> on it, retrying both through an outage. An operation
    /// that is not <paramref name="idempotent"/> is retried only when the connection could not be opened: once its
    /// statements were sent, a lost reply may hide a commit that a second run would repeat.
    /// </summary>
    public async Task<T> RunAsync<T>(
        Func<CancellationToken, ValueTask<DbConnection>> open,
        Func<DbConnection, CancellationToken, Task<T>> operation,
        TimeSpan patience,
        bool idempotent,
        CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        TimeSpan delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            bool opened = false;
            try
            {
                DbConnection connection = await open(ct).ConfigureAwait(false);
                opened = true;
                MarkUp();
                await using (connection.ConfigureAwait(false))
                {
                    return await operation(connection, ct).ConfigureAwait(false);
                }
            }
            catch (Exception e) when ((!opened || idempotent) && IsOutage(e, ct))
            {
                bool reached = _reached;
                TimeSpan limit = reached ? patience : connectTimeout;
                MarkDown(e, reached, limit);
                TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
                if (elapsed >= limit)
                {
                    throw reached
                        ? new TimeoutException($"{display} did not answer for {elapsed.TotalSeconds:F1} s (patience {patience}): {e.GetType().Name}: {FirstLine(e.Message)}", e)
                        : new BrokerUnreachableException(display, connectTimeout, e);
                }

                // The last try falls at the limit, so that an operation never gives up before it.
                await Task.Delay(delay < limit - elapsed ? delay : limit - elapsed, ct).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, s_maxDelay.Ticks));
            }
        }
    }

    /// <summary>Whether <paramref name="e"/> means the server was away or the connection broke (worth a retry), not a bad statement or login.</summary>
    internal static bool IsOutage(Exception e, CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            return false;
        }

        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is DbException { IsTransient: true } or SocketException or IOException or TimeoutException)
            {
                return true;
            }
        }

        return false;
    }

    private static string FirstLine(string text) => text.Split('\n')[0].Trim();

    private void MarkUp()
    {
        _reached = true;
        long since;
        lock (_gate)
        {
            since = _downSince;
            _downSince = 0;
        }

        if (since != 0)
        {
            Log.StoreBack(logger, display, Stopwatch.GetElapsedTime(since));
        }
    }

    private void MarkDown(Exception e, bool reached, TimeSpan limit)
    {
        lock (_gate)
        {
            if (_downSince != 0)
            {
                return;
            }

            _downSince = Stopwatch.GetTimestamp();
        }

        if (reached)
        {
            Log.StoreDown(logger, display, FirstLine(e.Message), limit);
        }
        else
        {
            Log.StoreNeverReached(logger, display, FirstLine(e.Message), limit.TotalSeconds);
        }
    }
}
