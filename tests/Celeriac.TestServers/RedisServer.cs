using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Celeriac.TestServers;

/// <summary>
/// A real <c>redis-server</c> (Debian's package) on a free loopback port with its own data folder and an
/// append-only file, so a stop and start keeps what it held, as a production Redis with AOF does.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    /// <summary>The server binary.</summary>
    public const string Binary = "/usr/bin/redis-server";

    private readonly ServerProcess _server;

    private RedisServer(int port, string directory)
    {
        _server = new ServerProcess(string.Create(CultureInfo.InvariantCulture, $"redis-server on port {port}"));
        Port = port;
        Directory = directory;
    }

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>The data folder (deleted on dispose).</summary>
    public string Directory { get; }

    /// <summary>Whether the server process runs.</summary>
    public bool IsRunning => _server.IsRunning;

    /// <summary>What the server printed.</summary>
    public string Log => _server.Log;

    /// <summary>The TLS port on 127.0.0.1 (0 unless started with <see cref="StartTlsAsync"/>).</summary>
    public int TlsPort { get; private set; }

    /// <summary>The certificates of the TLS port, if it has one.</summary>
    public TestCertificates? Certificates { get; private set; }

    private string? TlsAuthClients { get; set; }

    /// <summary>
    /// The <c>rediss://</c> URL of database <paramref name="db"/> on the TLS port, with <paramref name="query"/>
    /// (<c>ssl_ca_certs=...</c>) appended as it is.
    /// </summary>
    public string TlsUrl(int db = 0, string query = "") =>
        string.Create(CultureInfo.InvariantCulture, $"rediss://127.0.0.1:{TlsPort}/{db}{(query.Length > 0 ? "?" + query : "")}");

    /// <summary>The URL of database <paramref name="db"/>.</summary>
    public string Url(int db = 0) => string.Create(CultureInfo.InvariantCulture, $"redis://127.0.0.1:{Port}/{db}");

    /// <summary>Starts a server and waits until it answers PING.</summary>
    public static async Task<RedisServer> StartAsync(CancellationToken ct = default)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: scripts/provision.sh installs the redis-server package.");
        }

        string dir = Path.Combine(Path.GetTempPath(), "celeriac-redis-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var server = new RedisServer(FreePort.Next(), dir);
        await server.StartAgainAsync(ct).ConfigureAwait(false);
        return server;
    }

    /// <summary>
    /// Starts a server with a TLS port as well (the plain one stays, for the fixture's own checks), its certificate
    /// signed by <paramref name="certificates"/>' CA; with <paramref name="requireClientCertificates"/> a client must
    /// show a certificate of that CA (<c>--tls-auth-clients yes</c>), otherwise it need not (<c>optional</c>).
    /// </summary>
    public static async Task<RedisServer> StartTlsAsync(TestCertificates certificates, bool requireClientCertificates, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        string dir = Path.Combine(Path.GetTempPath(), "celeriac-redis-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        int port = FreePort.Next();
        int tlsPort = FreePort.Next();
        while (tlsPort == port)
        {
            tlsPort = FreePort.Next();
        }

        var server = new RedisServer(port, dir)
        {
            TlsPort = tlsPort,
            Certificates = certificates,
            TlsAuthClients = requireClientCertificates ? "yes" : "optional",
        };
        await server.StartAgainAsync(ct).ConfigureAwait(false);
        return server;
    }

    /// <summary>Starts the server again on the same port and folder (after <see cref="StopAsync"/> or <see cref="Kill"/>).</summary>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        if (IsRunning)
        {
            return;
        }

        var start = new ProcessStartInfo(Binary) { WorkingDirectory = Directory };
        foreach (string a in (string[])[
            "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", Directory,
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no",
            "--protected-mode", "yes", "--databases", "16", "--loglevel", "warning"])
        {
            start.ArgumentList.Add(a);
        }

        if (Certificates is { } certs)
        {
            foreach (string a in (string[])[
                "--tls-port", TlsPort.ToString(CultureInfo.InvariantCulture), "--tls-cert-file", certs.ServerCertFile,
                "--tls-key-file", certs.ServerKeyFile, "--tls-ca-cert-file", certs.CaFile, "--tls-auth-clients", TlsAuthClients!])
            {
                start.ArgumentList.Add(a);
            }
        }

        await _server.StartAsync(start, PingAsync, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(20), ct).ConfigureAwait(false);
    }

    /// <summary>Stops the server the way an operator does (SIGTERM: it flushes its append-only file and exits).</summary>
    public Task StopAsync() => _server.StopAsync(TimeSpan.FromSeconds(20));

    /// <summary>Kills the server at once    /// <summary>Kills the server at once (SIGKILL): what the last second of writes held may be gone.</summary>
    public void Kill() => _server.Kill();

    /// <summary>Runs a command with <c>redis-cli</c> and returns what it printed (raw mode).</summary>
    public async Task<string> CliAsync(params string[] args)
    {
        return await ServerProcess.RunToolAsync(
            new ProcessStartInfo("/usr/bin/redis-cli"),
            ["-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "--raw", .. args],
            TimeSpan.FromSeconds(30)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _server.Dispose();
        await Task.Yield();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A folder left in /tmp is harmless; the test's outcome matters more.
        }
    }

    private async Task<bool> PingAsync(CancellationToken ct)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port, ct).ConfigureAwait(false);
            NetworkStream stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), ct).ConfigureAwait(false);
            var buffer = new byte[64];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            int n = await stream.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
            return Encoding.ASCII.GetString(buffer, 0, n).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }

}
