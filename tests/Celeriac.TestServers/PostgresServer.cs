using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Celeriac.TestServers;

/// <summary>
/// A real PostgreSQL server (Debian's <c>postgresql</c> package, its <c>initdb</c> and <c>postgres</c>) on a free
/// loopback port, with its own data folder and trust authentication for the <c>postgres</c> role. Tests isolate
/// themselves by database (<see cref="CreateDatabaseAsync"/>). PostgreSQL refuses to run as root: when the tests do,
/// the server runs as the package's <c>postgres</c> user (through <c>setpriv</c>, which execs, so the process the
/// tests signal is the postmaster itself) and its folder is given to it.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    /// <summary>The folder of Debian's server binaries.</summary>
    public static readonly string BinDirectory = FindBinDirectory();

    private readonly ServerProcess _server;
    private readonly IReadOnlyList<string> _settings;
    private int _databases;

    private PostgresServer(int port, string directory, IReadOnlyList<string> settings)
    {
        _server = new ServerProcess(string.Create(CultureInfo.InvariantCulture, $"postgres on port {port}"));
        Port = port;
        Directory = directory;
        _settings = settings;
    }

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>The server's folder (data in <c>data/</c>, its socket and log beside it; deleted on dispose).</summary>
    public string Directory { get; }

    /// <summary>Whether the server process runs.</summary>
    public bool IsRunning => _server.IsRunning;

    /// <summary>The URL of <paramref name="database"/> as Celeriac's <c>postgresql://</c> transport reads it.</summary>
    public string Url(string database = "postgres", string scheme = "postgresql") =>
        string.Create(CultureInfo.InvariantCulture, $"{scheme}://postgres@127.0.0.1:{Port}/{database}");

    /// <summary>An Npgsql connection string for <paramref name="database"/>.</summary>
    public string ConnectionString(string database = "postgres") =>
        string.Create(CultureInfo.InvariantCulture, $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=false");

    /// <summary>
    /// Starts a server and waits until it accepts connections. <paramref name="settings"/> are extra
    /// <c>name=value</c> server settings (e.g. <c>log_statement=all</c>), passed as <c>-c</c> options.
    /// </summary>
    public static async Task<PostgresServer> StartAsync(IReadOnlyList<string>? settings = null, CancellationToken ct = default)
    {
        string initdb = Path.Combine(BinDirectory, "initdb");
        if (!File.Exists(initdb))
        {
            throw new InvalidOperationException($"{initdb} is missing: scripts/provision.sh installs the postgresql package.");
        }

        string dir = Path.Combine(Path.GetTempPath(), "celeriac-pg-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var server = new PostgresServer(FreePort.Next(), dir, settings ?? []);
        await ChownAsync(dir).ConfigureAwait(false);
        await ServerProcess.RunToolAsync(
            AsServerUser(initdb),
            ["-D", server.DataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"],
            TimeSpan.FromSeconds(120)).ConfigureAwait(false);
        await server.StartAgainAsync(ct).ConfigureAwait(false);
        return server;
    }

    private string DataDirectory => Path.Combine(Directory, "data");

    /// <summary>Starts the server again on the same port and folder (after <see cref="StopAsync"/> or <see cref="Kill"/>).</summary>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        if (IsRunning)
        {
            return;
        }

        ProcessStartInfo start = AsServerUser(Path.Combine(BinDirectory, "postgres"));
        foreach (string a in (string[])[
            "-D", DataDirectory, "-p", Port.ToString(CultureInfo.InvariantCulture), "-k", Directory,
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
            "-c", "max_connections=300", "-c", "shared_preload_libraries=pg_stat_statements",
            "-c", "logging_collector=off", "-c", "log_destination=stderr", "-c", "log_min_messages=warning"])
        {
            start.ArgumentList.Add(a);
        }

        foreach (string s in _settings)
        {
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(s);
        }

        await _server.StartAsync(start, ReadyAsync, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(50), ct).ConfigureAwait(false);
    }

    /// <summary>What the server printed: its log, with the statement log when <c>log_statement</c> is set.</summary>
    public string Log => _server.Log;

    /// <summary>Stops the server the way an operator does (SIGTERM: smart shutdown is too patient, so a fast one, SIGINT).</summary>
    public Task StopAsync() => _server.StopAsync(TimeSpan.FromSeconds(30), "-INT");

    /// <summary>Kills the server at once (SIGKILL of the postmaster; its backends exit when they see it gone).</summary>
    public void Kill() => _server.Kill();

    /// <summary>Creates a new empty database and returns its name (one per test).</summary>
    public async Task<string> CreateDatabaseAsync(CancellationToken ct = default)
    {
        string name = string.Create(CultureInfo.InvariantCulture, $"t{Interlocked.Increment(ref _databases)}_{Guid.NewGuid().ToString("N")[..8]}");
        await ExecuteAsync($"CREATE DATABASE {name}", "postgres", ct).ConfigureAwait(false);
        return name;
    }

    /// <summary>Runs one statement on <paramref name="database"/>.</summary>
    public async Task ExecuteAsync(string sql, string database = "postgres", CancellationToken ct = default)
    {
        await using var connection = new NpgsqlConnection(ConnectionString(database));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Runs one query on <paramref name="database"/> and returns its first column's first value.</summary>
    public async Task<object?> ScalarAsync(string sql, string database = "postgres", CancellationToken ct = default)
    {
        await using var connection = new NpgsqlConnection(ConnectionString(database));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (IsRunning)
        {
            try
            {
                // Immediate shutdown (SIGQUIT): the postmaster takes its backends with it, which a SIGKILL would leave.
                await _server.StopAsync(TimeSpan.FromSeconds(10), "-QUIT").ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
        }

        _server.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A folder left in /tmp is harmless; the test's outcome matters more.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private async Task<bool> ReadyAsync(CancellationToken ct)
    {
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionString() + ";Timeout=2");
            await connection.OpenAsync(ct).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }

    private static bool IsRoot => Environment.UserName == "root";

    /// <summary>Runs <paramref name="program"/> as the <c>postgres</c> user when the tests run as root.</summary>
    private static ProcessStartInfo AsServerUser(string program)
    {
        if (!IsRoot)
        {
            return new ProcessStartInfo(program);
        }

        var start = new ProcessStartInfo("/usr/bin/setpriv");
        foreach (string a in (string[])["--reuid=postgres", "--regid=postgres", "--init-groups", "--", program])
        {
            start.ArgumentList.Add(a);
        }

        return start;
    }

    private static async Task ChownAsync(string dir)
    {
        if (IsRoot)
        {
            await ServerProcess.RunToolAsync(new ProcessStartInfo("/bin/chown"), ["postgres:postgres", dir], TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
    }

    private static string FindBinDirectory()
    {
        const string root = "/usr/lib/postgresql";
        return System.IO.Directory.Exists(root)
            ? System.IO.Directory.GetDirectories(root).Select(d => Path.Combine(d, "bin")).Where(System.IO.Directory.Exists).Order(StringComparer.Ordinal).LastOrDefault() ?? Path.Combine(root, "15", "bin")
            : Path.Combine(root, "15", "bin");
    }
}
