using System.Diagnostics;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Celeriac.Redis;

/// <summary>
/// One connection to a Redis server, shared by every transport and backend of the process that uses that
/// server (whatever their database), and counted: the last user closes it. It tells outages apart from
/// errors: <see cref="RunAsync{T}"/> retries what failed because Redis was away, with back-off, and the
/// outage is logged once when it starts and once when it ends.
/// </summary>
internal sealed class RedisConnection
{
    private static readonly Dictionary<string, RedisConnection> s_shared = new(StringComparer.Ordinal);
    private static readonly Lock s_gate = new();

    private readonly Lazy<Task<ConnectionMultiplexer>> _multiplexer;
    private readonly ILogger _logger;
    private readonly ServerOutage _outage;
    private static readonly TimeSpan s_settled = TimeSpan.FromSeconds(1);
    private int _users;
    private bool _answered;

    private RedisConnection(RedisEndpoint endpoint, ILogger logger, ServerOutage outage)
    {
        Endpoint = endpoint;
        _logger = logger;
        _outage = outage;
        _multiplexer = new Lazy<Task<ConnectionMultiplexer>>(() => ConnectAsync(endpoint));
    }

    /// <summary>Where it connects.</summary>
    public RedisEndpoint Endpoint { get; }

    /// <summary>Takes (or opens) the shared connection to the endpoint's server.</summary>
    public static RedisConnection Acquire(RedisEndpoint endpoint, ILoggerFactory loggers, bool own = false)
    {
        if (own)
        {
            // Not shared (tests play a second process with it); the last user's release closes it as usual.
            return new RedisConnection(endpoint with { ServerKey = endpoint.ServerKey + "|" + Guid.NewGuid().ToString("N") }, loggers.CreateLogger("Celeriac.Redis"), new ServerOutage()) { _users = 1 };
        }

        lock (s_gate)
        {
            if (!s_shared.TryGetValue(endpoint.ServerKey, out RedisConnection? connection))
            {
                // A broker on db 0 and a backend on db 1 have a connection each: they share what they know of their
                // server's outages, so that one is said once, not once by each (CI saw two "unreachable" lines from one
                // worker). With the server's last connection it goes too: an app made later says again what it finds.
                ServerOutage outage = s_shared.Values.FirstOrDefault(c => c.Endpoint.OutageKey == endpoint.OutageKey)?._outage ?? new ServerOutage();
                connection = new RedisConnection(endpoint, loggers.CreateLogger("Celeriac.Redis"), outage);
                s_shared[endpoint.ServerKey] = connection;
            }

            connection._users++;
            return connection;
        }
    }

    /// <summary>Gives the connection back; the last user closes it.</summary>
    public async ValueTask ReleaseAsync()
    {
        lock (s_gate)
        {
            if (--_users > 0)
            {
                return;
            }

            if (s_shared.TryGetValue(Endpoint.ServerKey, out RedisConnection? shared) && ReferenceEquals(shared, this))
            {
                s_shared.Remove(Endpoint.ServerKey);
            }
        }

        if (_multiplexer.IsValueCreated && _multiplexer.Value.IsCompletedSuccessfully)
        {
            await _multiplexer.Value.Result.CloseAsync(allowCommandsToComplete: true).ConfigureAwait(false);
            await _multiplexer.Value.Result.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The multiplexer (connecting on first use; it reconnects by itself after a loss).</summary>
    public Task<ConnectionMultiplexer> MultiplexerAsync() => _multiplexer.Value;

    /// <summary>A database of the server.</summary>
    public async ValueTask<IDatabase> DatabaseAsync(int db) => (await MultiplexerAsync().ConfigureAwait(false)).GetDatabase(db);

    /// <summary>Opens a connection of its own (for blocking commands, which would stall the shared one).</summary>
    public Task<ConnectionMultiplexer> OpenDedicatedAsync() => ConnectAsync(Endpoint);

    /// <summary>Whether <paramref name="e"/> says Redis is away or not ready yet, rather than that the command was wrong.</summary>
    public static bool IsOutage(Exception e) => e switch
    {
        RedisConnectionException or RedisTimeoutException or TimeoutException => true,
        RedisServerException s => s.Message.StartsWith("LOADING", StringComparison.Ordinal) || s.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal),
        _ => false,
    };

    /// <summary>
    /// Runs <paramref name="operation"/>, retrying it with back-off (50 ms doubling to 2 s) while Redis is away,
    /// until <paramref name="patience"/> has passed (then the last error is thrown) or <paramref name="ct"/> is cancelled.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<Task<T>> operation, TimeSpan patience, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        TimeSpan delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                Task<T> attempt = UnlessTlsFailsAsync(operation());
                T result;
                if (Volatile.Read(ref _answered))
                {
                    result = await attempt.ConfigureAwait(false);
                }
                else
                {
                    // Until the server first answers, a caller waits no longer than the connect timeout in all: the
                    // client's own first connect can take longer than its ConnectTimeout (a TimeoutException is an outage).
                    TimeSpan left = TimeSpan.FromMilliseconds(Endpoint.Configuration.ConnectTimeout) - Stopwatch.GetElapsedTime(start);
                    result = await attempt.WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero, ct).ConfigureAwait(false);
                }

                Volatile.Write(ref _answered, true);
                MarkUp();
                return result;
            }
            catch (Exception e) when (IsOutage(e) && !ct.IsCancellationRequested)
            {
                MarkDown(e);
                if (TlsCause(e) is { } tls)
                {
                    // A handshake that failed fails again: waiting out the patience would only hide why.
                    throw tls;
                }

                // A server that has never answered is more likely a wrong address or one not started than a restart:
                // the caller hears so within the connect timeout rather than after the patience meant for outages.
                TimeSpan connectTimeout = TimeSpan.FromMilliseconds(Endpoint.Configuration.ConnectTimeout);
                if (!Volatile.Read(ref _answered) && Stopwatch.GetElapsedTime(start) + delay > connectTimeout)
                {
                    throw new BrokerUnreachableException(Endpoint.Display, connectTimeout, e);
                }

                if (Stopwatch.GetElapsedTime(start) + delay > patience)
                {
                    throw;
                }

                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    // TLS 1.3 refuses a missing client certificate after the handshake, so the client may see only a dropped or
    // cancelled connection; but it saw the server ask, and a server that never answered is refusing, not busy.
    private CeleriacConfigurationException? TlsCause(Exception e) =>
        Endpoint.Tls is not { } tls ? null
        : tls.Explain(e) ?? (Volatile.Read(ref _answered) ? null : tls.MissingClientCertificate(e));

    // While the first connect is under way (the client waits its whole connect timeout before it gives up), a failed
    // TLS handshake ends the wait at once: it will fail again, and the caller should hear why now.
    private async Task<T> UnlessTlsFailsAsync<T>(Task<T> attempt)
    {
        if (Endpoint.Tls is { } tls && !attempt.IsCompleted && _multiplexer.IsValueCreated && !_multiplexer.Value.IsCompleted)
        {
            await Task.WhenAny(attempt, tls.Failed).ConfigureAwait(false);
            if (!attempt.IsCompleted && tls.RecentError() is { } error)
            {
                _ = attempt.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                MarkDown(error);
                throw error;
            }
        }

        return await attempt.ConfigureAwait(false);
    }

    /// <summary>Notes that Redis failed (logs once per outage).</summary>
    public void MarkDown(Exception e)
    {
        lock (_outage.Gate)
        {
            _outage.LastFailure = Stopwatch.GetTimestamp();
            if (_outage.Started != 0)
            {
                return;
            }

            _outage.Started = _outage.LastFailure;
        }

        if (TlsCause(e) is { } tls)
        {
            Log.TlsFailed(_logger, tls.Message);
            return;
        }

        // A server never reached is given up on after the connect timeout, one that went away is waited for: say which.
        if (Volatile.Read(ref _answered))
        {
            Log.Unreachable(_logger, Endpoint.Display, e.Message.Split('\n')[0]);
        }
        else
        {
            Log.NeverReached(_logger, Endpoint.Display, e.Message.Split('\n')[0], Endpoint.Configuration.ConnectTimeout / 1000.0);
        }
    }

    /// <summary>Notes that Redis answered (logs once when an outage ends).</summary>
    public void MarkUp()
    {
        if (Volatile.Read(ref _outage.Started) == 0)
        {
            return;
        }

        long started;
        lock (_outage.Gate)
        {
            // A reply that was already on its way when Redis went (or that came between a restart's failures, or on
            // another database's connection that still fails) does not end the outage: only one that comes a while
            // after the last failure does, so an outage logs once.
            if (Stopwatch.GetElapsedTime(_outage.LastFailure) < s_settled)
            {
                return;
            }

            started = _outage.Started;
            _outage.Started = 0;
        }

        if (started != 0)
        {
            Log.Reachable(_logger, Endpoint.Display, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    private static async Task<ConnectionMultiplexer> ConnectAsync(RedisEndpoint endpoint)
    {
        // With AbortOnConnectFail off this returns even when Redis is down, and connects in the background.
        ConnectionMultiplexer multiplexer = await ConnectionMultiplexer.ConnectAsync(endpoint.Configuration.Clone()).ConfigureAwait(false);
        if (endpoint.Tls is { } tls)
        {
            // A server that refuses the handshake (no client certificate, an untrusted one) shows only here.
            multiplexer.ConnectionFailed += (_, failed) =>
            {
                if (failed.FailureType == ConnectionFailureType.AuthenticationFailure && failed.Exception is { } e && tls.RecentFailure is null)
                {
                    tls.NoteFailure(Innermost(e).Message);
                }
            };
        }

        return multiplexer;
    }

    private static Exception Innermost(Exception e) => e.InnerException is null ? e : Innermost(e.InnerException);

    /// <summary>What a process knows of one server's outage, shared by its connections (see <see cref="Acquire"/>).</summary>
    private sealed class ServerOutage
    {
        public readonly Lock Gate = new();
        public long Started;
        public long LastFailure;
    }
}
