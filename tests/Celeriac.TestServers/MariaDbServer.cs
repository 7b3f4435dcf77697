using System.Diagnostics;
using System.Globalization;
using MySqlConnector;

namespace Celeriac.TestServers;

/// <summary>
/// A real MariaDB server (Debian's <c>mariadb-server</c>: <c>mariadb-install-db</c>, then <c>mariadbd</c>) on a free
/// loopback port, with its own data folder and socket, and <c>root</c> without a password. Tests isolate themselves by
/// database (<see cref="CreateDatabaseAsync"/>). MariaDB refuses to run as root unless told: the tests may run as root,
/// so the server is started with <c>--user=root</c> then.
/// </summary>
public sealed class MariaDbServer : IAsyncDisposable
{
    private readonly ServerProcess _server;
    private int _databases;

    private MariaDbServer(int port, string directory)
    {
        _server = new ServerProcess(string.Create(CultureInfo.InvariantCulture, $"mariadbd on port {port}"));
        Port = port;
        Directory = directory;
    }

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>The server's folder (data in <c>data/</c>, its socket beside it; deleted on dispose).</summary>
    public string Directory { get; }

    /// <summary>The URL of <paramref name="database"/> as Celery's database backend reads it.</summary>
    public string Url(string database, string scheme = "db+mysql") =>
        string.Create(CultureInfo.InvariantCulture, $"{scheme}://root@127.0.0.1:{Port}/{database}");

    /// <summary>A MySqlConnector connection string for <paramref name="database"/>.</summary>
    public string ConnectionString(string? database = null) =>
        string.Create(CultureInfo.InvariantCulture, $"Server=127.0.0.1;Port={Port};User ID=root;Pooling=false{(database is null ? "" : ";Database=" + database)}");

    private static bool IsRoot => Environment.UserName == "root";

    /// <summary>Creates a data folder and starts a server; waits until it accepts connections.</summary>
    public static async Task<MariaDbServer> StartAsync(CancellationToken ct = default)
    {
        const string install = "/usr/bin/mariadb-install-db";
        if (!File.Exists(install))
        {
            throw new InvalidOperationException($"{install} is missing: scripts/provision.sh installs the mariadb-server package.");
        }

        string dir = Path.Combine(Path.GetTempPath(), "celeriac-mariadb-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var server = new MariaDbServer(FreePort.Next(), dir);
        List<string> args = ["--no-defaults", "--datadir=" + server.DataDirectory, "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"];
        if (IsRoot)
        {
            args.Add("--user=root");
        }

        await ServerProcess.RunToolAsync(new ProcessStartInfo(install), args, TimeSpan.FromSeconds(120)).ConfigureAwait(false);
        await server.StartAgainAsync(ct).ConfigureAwait(false);
        return server;
    }

    private string DataDirectory => Path.Combine(Directory, "data");

    /// <summary>Starts the server (again) on the same port and folder.</summary>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        if (_server.IsRunning)
        {
            return;
        }

        var start = new ProcessStartInfo("/usr/sbin/mariadbd");
        foreach (string a in (string[])[
            "--no-defaults", "--datadir=" + DataDirectory, "--port=" + Port.ToString(CultureInfo.InvariantCulture), "--bind-address=127.0.0.1",
            "--socket=" + Path.Combine(Directory, "mysqld.sock"), "--pid-file=" + Path.Combine(Directory, "mysqld.pid"), "--skip-name-resolve",
            "--innodb-flush-log-at-trx-commit=2", "--innodb-buffer-pool-size=64M", "--max-connections=500", "--character-set-server=utf8mb4"])
        {
            start.ArgumentList.Add(a);
        }

        if (IsRoot)
        {
            start.ArgumentList.Add("--user=root");
        }

        await _server.StartAsync(start, ReadyAsync, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100), ct).ConfigureAwait(false);
    }

    /// <summary>Creates a new empty database and returns its name (one per test).</summary>
    public async Task<string> CreateDatabaseAsync(CancellationToken ct = default)
    {
        string name = string.Create(CultureInfo.InvariantCulture, $"t{Interlocked.Increment(ref _databases)}_{Guid.NewGuid().ToString("N")[..8]}");
        await ExecuteAsync($"CREATE DATABASE {name}", null, ct).ConfigureAwait(false);
        return name;
    }

    /// <summary>Runs one statement.</summary>
    public async Task ExecuteAsync(string sql, string? database = null, CancellationToken ct = default)
    {
        await using var connection = new MySqlConnection(ConnectionString(database));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = new MySqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Runs one query and returns its first column's first value.</summary>
    public async Task<object?> ScalarAsync(string sql, string? database = null, CancellationToken ct = default)
    {
        await using var connection = new MySqlConnection(ConnectionString(database));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = new MySqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
    }

    private async Task<bool> ReadyAsync(CancellationToken ct)
    {
        try
        {
            await using var connection = new MySqlConnection(ConnectionString() + ";Connection Timeout=2");
            await connection.OpenAsync(ct).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is MySqlException or IOException or TimeoutException or InvalidOperationException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_server.IsRunning)
        {
            try
            {
                await _server.StopAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                _server.Kill();
            }
        }

        _server.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
