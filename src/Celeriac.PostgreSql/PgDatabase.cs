using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Celeriac.PostgreSql;

/// <summary>
/// The connections of one transport to its database: a pool for statements and the outage bookkeeping.
/// <see cref="RunAsync{T}"/> retries what failed because the server was away, with back-off; an outage is logged once
/// when it starts (Warning) and once when it ends (Information), whoever noticed it.
/// </summary>
internal sealed class PgDatabase : IAsyncDisposable
{
    private static readonly TimeSpan s_settled = TimeSpan.FromMilliseconds(500);

    /// <summary>Npgsql's connect timeout, in seconds, when neither the caller nor the URL sets one.</summary>
    private const int DefaultConnectTimeoutSeconds = 10;
    private readonly ILogger _logger;
    private readonly Lock _outageGate = new();
    private long _outageStarted;
    private long _lastFailure;

    private readonly TimeSpan _connectTimeout;
    private bool _answered;

    /// <summary>
    /// A database on the server <paramref name="url"/> names. Until the server first answers, a call gives up after
    /// <paramref name="connectTimeout"/> with a <see cref="BrokerUnreachableException"/>; afterwards outages are waited
    /// out with each call's patience.
    /// </summary>
    public PgDatabase(Uri url, ILogger logger, TimeSpan? connectTimeout = null)
    {
        _logger = logger;
        _connectTimeout = connectTimeout is { } t && t > TimeSpan.Zero ? t : TimeSpan.FromSeconds(DefaultConnectTimeoutSeconds);
        ConnectionString = ConnectionStringOf(url, Math.Max(1, (int)Math.Ceiling(_connectTimeout.TotalSeconds)));
        Display = UrlText.Mask(url);
        DataSource = NpgsqlDataSource.Create(ConnectionString);
    }

    /// <summary>The Npgsql connection string the URL means.</summary>
    public string ConnectionString { get; }

    /// <summary>The URL with its password masked, for logs.</summary>
    public string Display { get; }

    public NpgsqlDataSource DataSource { get; }

    /// <summary>
    /// The Npgsql connection string of a <c>postgresql://user:password@host:port/database?option=value</c> URL. Query
    /// options are Npgsql's connection-string keywords (<c>sslmode</c>, <c>Timeout</c>, ...); the database defaults to
    /// the user's name, as <c>libpq</c>'s does.
    /// </summary>
    public static string ConnectionStringOf(Uri url) => ConnectionStringOf(url, DefaultConnectTimeoutSeconds);

    /// <summary>The same, with Npgsql's connect timeout in seconds unless the URL's <c>Timeout</c> option sets it.</summary>
    public static string ConnectionStringOf(Uri url, int connectTimeoutSeconds)
    {
        ArgumentNullException.ThrowIfNull(url);
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = url.Host.Length > 0 ? url.Host : "localhost",
            Port = url.IsDefaultPort || url.Port <= 0 ? 5432 : url.Port,

            // No reset round trip when a pooled connection comes back; statements are prepared once per connection.
            NoResetOnClose = true,
            MaxAutoPrepare = 32,

            // Dead peers are noticed by TCP keepalives, not by queries: an idle worker issues none.
            TcpKeepAlive = true,
            TcpKeepAliveTime = 30,
            TcpKeepAliveInterval = 5,
            Timeout = connectTimeoutSeconds,
        };
        string user = "postgres";
        if (url.UserInfo.Length > 0)
        {
            string[] parts = url.UserInfo.Split(':', 2);
            user = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                b.Password = Uri.UnescapeDataString(parts[1]);
            }
        }

        b.Username = user;
        string db = Uri.UnescapeDataString(url.AbsolutePath.TrimStart('/'));
        b.Database = db.Length > 0 ? db : user;
        foreach (string pair in url.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] kv = pair.Split('=', 2);
            string key = Uri.UnescapeDataString(kv[0]);
            try
            {
                b[key] = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "true";
            }
            catch (ArgumentException e)
            {
                throw new CeleriacConfigurationException($"Unknown option '{key}' in the PostgreSQL broker URL '{UrlText.Mask(url)}': {e.Message}");
            }
        }

        return b.ConnectionString;
    }

    /// <summary>Whether <paramref name="e"/> says the server is away (or restarting), rather than that the statement was wrong.</summary>
    public static bool IsOutage(Exception e) => e switch
    {
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState.StartsWith("57P", StringComparison.Ordinal) || p.SqlState == "53300",
        NpgsqlException n => n.IsTransient || n.InnerException is IOException or SocketException or TimeoutException || n.InnerException is null,
        IOException or SocketException or TimeoutException => true,
        _ => false,
    };

    /// <summary>
    /// Runs <paramref name="operation"/> on a pooled connection, retrying it with back-off (50 ms doubling to 2 s) while
    /// the server is away, until <paramref name="patience"/> has passed (then the last error is thrown) or
    /// <paramref name="ct"/> is cancelled.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<NpgsqlConnection, Task<T>> operation, TimeSpan patience, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        TimeSpan delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                NpgsqlConnection connection = await DataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
                T result;
                await using (connection.ConfigureAwait(false))
                {
                    result = await operation(connection).ConfigureAwait(false);
                }

                Volatile.Write(ref _answered, true);
                MarkUp();
                return result;
            }
            catch (Exception e) when (IsOutage(e) && !ct.IsCancellationRequested)
            {
                MarkDown(e);

                // Pooled connections of the lost server are dead too.
                DataSource.Clear();

                // A server that never answered is more likely a wrong address or one not started than a restart.
                if (!Volatile.Read(ref _answered) && Stopwatch.GetElapsedTime(start) + delay > _connectTimeout)
                {
                    throw new BrokerUnreachableException(Display, _connectTimeout, e);
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

    /// <summary>Notes that the server failed (logs once per outage).</summary>
    public void MarkDown(Exception e)
    {
        lock (_outageGate)
        {
            _lastFailure = Stopwatch.GetTimestamp();
            if (_outageStarted != 0)
            {
                return;
            }

            _outageStarted = _lastFailure;
        }

        Log.Unreachable(_logger, Display, (e.InnerException ?? e).Message.Split('\n')[0]);
    }

    /// <summary>
    /// Notes that the server answered (logs once when an outage ends). <paramref name="fresh"/> says the answer came on
    /// a connection opened after the failures (the listener's), so it cannot be a reply that was already on its way.
    /// </summary>
    public void MarkUp(bool fresh = false)
    {
        if (Volatile.Read(ref _outageStarted) == 0)
        {
            return;
        }

        long started;
        lock (_outageGate)
        {
            // A reply already on its way when the server went does not end the outage; one a while after the last failure does.
            if (!fresh && Stopwatch.GetElapsedTime(_lastFailure) < s_settled)
            {
                return;
            }

            started = _outageStarted;
            _outageStarted = 0;
        }

        if (started != 0)
        {
            Log.Reachable(_logger, Display, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    /// <summary>
    /// Creates what is missing (<c>schema.sql</c>, embedded), under an advisory lock so that racing workers wait for each
    /// other. Unless <paramref name="always"/> (<c>celeriac migrate</c>), tables that are all there already are left
    /// alone without running the script: a role that may use the tables but not create any (schemas managed by a team)
    /// then works too.
    /// </summary>
    public async Task EnsureSchemaAsync(CancellationToken ct, bool always = false)
    {
        await RunAsync(
            async connection =>
            {
                if (!always)
                {
                    using var exists = new NpgsqlCommand(Schema.TablesExist, connection);
                    if (await exists.ExecuteScalarAsync(ct).ConfigureAwait(false) is true)
                    {
                        return true;
                    }
                }

                using NpgsqlTransaction tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
                using (var create = new NpgsqlCommand(Schema.Script, connection, tx))
                {
                    await create.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await tx.CommitAsync(ct).ConfigureAwait(false);
                return true;
            },
            TimeSpan.FromSeconds(60),
            ct).ConfigureAwait(false);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"PgDatabase({Display})");

    public ValueTask DisposeAsync() => DataSource.DisposeAsync();
}
