using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using Microsoft.Extensions.Logging;

namespace Celeriac.Aws;

/// <summary>
/// Runs calls to an AWS service (or its emulator) through outages: a call that failed because the service was away,
/// slow or throttling is retried with back-off until it succeeds or its patience runs out, and then the error says
/// which service was unreachable and for how long. The outage is logged once when it starts and once when it ends.
/// A service that has never answered is tried only for <c>connectTimeout</c>; then a
/// <see cref="BrokerUnreachableException"/> says so.
/// </summary>
internal sealed class Outage(string service, string endpoint, ILogger logger, TimeSpan connectTimeout)
{
    private static readonly TimeSpan s_maxDelay = TimeSpan.FromSeconds(2);
    private readonly Lock _gate = new();
    private long _started;
    private bool _reached;

    /// <summary>The service's name and where it is, for messages.</summary>
    public string Describe => $"{service} at {endpoint}";

    /// <summary>Runs <paramref name="operation"/>, retrying it through an outage for up to <paramref name="patience"/>.</summary>
    public async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> operation, TimeSpan patience, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        TimeSpan delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                T result = await operation(ct).ConfigureAwait(false);
                Volatile.Write(ref _reached, true);
                MarkUp();
                return result;
            }
            catch (Exception e) when (IsTransient(e, ct))
            {
                // A service that has never answered is more likely a wrong address or one not started than an outage:
                // the caller hears so within the connect timeout rather than after the patience meant for outages (a
                // shorter patience, which the caller chose, still ends first and says what it always said).
                bool neverReached = !Volatile.Read(ref _reached) && connectTimeout < patience;
                TimeSpan limit = neverReached ? connectTimeout : patience;
                MarkDown(e, patience, neverReached);
                TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
                if (elapsed >= limit)
                {
                    throw neverReached
                        ? new BrokerUnreachableException(Describe, connectTimeout, e)
                        : new TimeoutException($"{Describe} did not answer for {elapsed.TotalSeconds:F1} s (patience {patience}): {e.GetType().Name}: {e.Message}", e);
                }

                // The last try falls at the limit, so a call never gives up before it.
                await Task.Delay(delay < limit - elapsed ? delay : limit - elapsed, ct).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, s_maxDelay.Ticks));
            }
            catch (AmazonServiceException)
            {
                // An error the service sent back (a missing table, a denied request) is an answer: it is there.
                Volatile.Write(ref _reached, true);
                throw;
            }
        }
    }

    /// <summary>Whether <paramref name="e"/> means the service was away or overloaded (worth a retry), not a bad request.</summary>
    internal static bool IsTransient(Exception e, CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            return false;
        }

        if (e is AmazonServiceException service && (service.StatusCode >= HttpStatusCode.InternalServerError || service.ErrorCode is "ThrottlingException" or "ProvisionedThroughputExceededException" or "RequestLimitExceeded" or "SlowDown" or "ServiceUnavailable" or "InternalError"))
        {
            return true;
        }

        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is HttpRequestException or SocketException or IOException or TaskCanceledException or TimeoutException)
            {
                return true;
            }
        }

        return false;
    }

    private void MarkDown(Exception e, TimeSpan patience, bool neverReached)
    {
        lock (_gate)
        {
            if (_started != 0)
            {
                return;
            }

            _started = Stopwatch.GetTimestamp();
        }

        // A service never reached is given up on after the connect timeout, one that went away is waited for: say which.
        if (neverReached)
        {
            Log.NeverReached(logger, service, endpoint, e.GetBaseException().Message, connectTimeout.TotalSeconds);
        }
        else
        {
            Log.Unreachable(logger, service, endpoint, e.GetBaseException().Message, patience);
        }
    }

    private void MarkUp()
    {
        if (Volatile.Read(ref _started) == 0)
        {
            return;
        }

        long started;
        lock (_gate)
        {
            started = _started;
            _started = 0;
        }

        if (started != 0)
        {
            Log.Reachable(logger, service, endpoint, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }
}
