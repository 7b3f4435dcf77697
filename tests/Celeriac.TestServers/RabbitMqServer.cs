using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Celeriac.TestServers;

/// <summary>
/// A real RabbitMQ node (Debian's <c>rabbitmq-server</c> package) run as the current user, with its own node name,
/// Erlang cookie and temporary folder (database, logs, config, plugins file), its AMQP listener on a free port of
/// 127.0.0.1 and its distribution port free too. A stop and start keeps the database, so durable queues and
/// persistent messages survive, as on a production node.
/// </summary>
/// <remarks>
/// <para>
/// <c>/usr/sbin/rabbitmq-server</c> is Debian's wrapper that switches to the <c>rabbitmq</c> user and writes to
/// <c>/var/lib/rabbitmq</c>; this fixture runs the real script, <see cref="ServerScript"/>, with
/// <c>RUNNING_UNDER_SYSTEMD=true</c> so that it <c>exec</c>s <c>erl</c> (which execs <c>beam.smp</c>) instead of
/// keeping a shell parent: the process started here is the Erlang VM, so SIGTERM stops it gracefully and SIGKILL kills it.
/// </para>
/// <para>
/// The node registers with epmd on its default port 4369, which nodes share; the first node starts it (bound to
/// 127.0.0.1) and it outlives the node, as epmd does.
/// </para>
/// </remarks>
public sealed class RabbitMqServer : IAsyncDisposable
{
    /// <summary>The server script (the real one, not Debian's user-switching wrapper in /usr/sbin).</summary>
    public const string ServerScript = "/usr/lib/rabbitmq/bin/rabbitmq-server";

    /// <summary>The CLI that talks to the node over Erlang distribution.</summary>
    public const string CtlScript = "/usr/lib/rabbitmq/bin/rabbitmqctl";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan CtlTimeout = TimeSpan.FromSeconds(60);

    // Distribution flags for both the node and the CLI: listen on loopback only.
    private const string LoopbackDistribution = "-kernel inet_dist_use_interface {127,0,0,1}";

    private readonly ServerProcess _node;

    private RabbitMqServer(string nodeName, int port, int distributionPort, string directory)
    {
        _node = new ServerProcess("rabbitmq-server " + nodeName);
        NodeName = nodeName;
        Port = port;
        DistributionPort = distributionPort;
        Directory = directory;
    }

    /// <summary>The Erlang node name (<c>celeriac-…@localhost</c>).</summary>
    public string NodeName { get; }

    /// <summary>The AMQP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>The Erlang distribution port on 127.0.0.1 (what <c>rabbitmqctl</c> connects to, found through epmd).</summary>
    public int DistributionPort { get; }

    /// <summary>The node's folder: config, cookie, database, logs (deleted on dispose).</summary>
    public string Directory { get; }

    /// <summary>Whether the node's VM runs.</summary>
    public bool IsRunning => _node.IsRunning;

    /// <summary>What the node printed (its log goes to the console at info level).</summary>
    public string Log => _node.Log;

    /// <summary>The AMQPS (TLS) port on 127.0.0.1 (0 unless started with <see cref="StartTlsAsync"/>).</summary>
    public int TlsPort { get; private set; }

    /// <summary>The certificates of the TLS listener, if it has one.</summary>
    public TestCertificates? Certificates { get; private set; }

    private bool RequireClientCertificates { get; set; }

    private string HomeDirectory => Path.Join(Directory, "home");

    /// <summary>
    /// The <c>amqps://</c> URL of <paramref name="vhost"/> on the TLS port as user guest, with <paramref name="query"/>
    /// (<c>ssl_ca_certs=...</c>) appended as it is.
    /// </summary>
    public string TlsUrl(string vhost = "/", string query = "") =>
        string.Create(CultureInfo.InvariantCulture, $"amqps://guest:guest@127.0.0.1:{TlsPort}/{Uri.EscapeDataString(vhost)}{(query.Length > 0 ? "?" + query : "")}");

    /// <summary>The AMQP URL of <paramref name="vhost"/> as user guest (allowed on loopback), the vhost escaped (<c>/</c> is <c>%2F</c>).</summary>
    public string Url(string vhost = "/") =>
        string.Create(CultureInfo.InvariantCulture, $"amqp://guest:guest@127.0.0.1:{Port}/{Uri.EscapeDataString(vhost)}");

    /// <summary>Starts a node in a new folder and waits until its AMQP port answers the protocol header.</summary>
    public static Task<RabbitMqServer> StartAsync(CancellationToken ct = default) => StartAsync("", ct);

    /// <summary>
    /// Starts a node with settings of the <c>rabbit</c> application in its <c>advanced.config</c>, as Erlang terms
    /// (<c>"{consumer_timeout, 4000}, {channel_tick_interval, 500}"</c>).
    /// </summary>
    public static Task<RabbitMqServer> StartAsync(string rabbitSettings, CancellationToken ct = default) => StartAsync(rabbitSettings, null, false, ct);

    /// <summary>
    /// Starts a node with a TLS listener as well (the plain one stays, for the fixture's own checks), its certificate
    /// signed by <paramref name="certificates"/>' CA; with <paramref name="requireClientCertificates"/> a client must
    /// show a certificate of that CA (<c>fail_if_no_peer_cert</c>), otherwise one it shows is still verified.
    /// </summary>
    public static Task<RabbitMqServer> StartTlsAsync(TestCertificates certificates, bool requireClientCertificates, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        return StartAsync("", certificates, requireClientCertificates, ct);
    }

    private static async Task<RabbitMqServer> StartAsync(string rabbitSettings, TestCertificates? certificates, bool requireClientCertificates, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(rabbitSettings);
        if (!File.Exists(ServerScript) || !File.Exists(CtlScript))
        {
            throw new InvalidOperationException($"{ServerScript} is missing: scripts/provision.sh installs the rabbitmq-server package.");
        }

        string id = Guid.NewGuid().ToString("N")[..12];
        string dir = Path.Combine(Path.GetTempPath(), "celeriac-rabbitmq-" + id);
        int port = FreePort.Next();
        int distributionPort = FreePort.Next();
        while (distributionPort == port)
        {
            distributionPort = FreePort.Next();
        }

        var server = new RabbitMqServer("celeriac-" + id + "@localhost", port, distributionPort, dir)
        {
            Certificates = certificates,
            RequireClientCertificates = requireClientCertificates,
        };
        if (certificates is not null)
        {
            int tlsPort = FreePort.Next();
            while (tlsPort == port || tlsPort == distributionPort)
            {
                tlsPort = FreePort.Next();
            }

            server.TlsPort = tlsPort;
        }

        server.WriteFiles(rabbitSettings);
        try
        {
            await server.StartAgainAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return server;
    }

    /// <summary>
    /// Starts the node again with the same name, ports and folder (after <see cref="StopAsync"/> or <see cref="Kill"/>):
    /// what its database held is still there.
    /// </summary>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        if (IsRunning)
        {
            return;
        }

        var start = new ProcessStartInfo(ServerScript) { WorkingDirectory = Directory };
        SetEnvironment(start);
        start.Environment["RUNNING_UNDER_SYSTEMD"] = "true";
        start.Environment["RABBITMQ_NODENAME"] = NodeName;
        start.Environment["RABBITMQ_USE_LONGNAME"] = "false";
        start.Environment["RABBITMQ_CONFIG_FILE"] = Path.Join(Directory, "rabbitmq.conf");
        start.Environment["RABBITMQ_CONFIG_FILES"] = Path.Join(Directory, "conf.d");
        start.Environment["RABBITMQ_ADVANCED_CONFIG_FILE"] = Path.Join(Directory, "advanced.config");
        start.Environment["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Join(Directory, "enabled_plugins");
        start.Environment["RABBITMQ_MNESIA_BASE"] = Path.Join(Directory, "mnesia");
        start.Environment["RABBITMQ_LOG_BASE"] = Path.Join(Directory, "log");
        start.Environment["RABBITMQ_PID_FILE"] = Path.Join(Directory, "rabbitmq.pid");
        start.Environment["RABBITMQ_LOGS"] = "-";
        start.Environment["RABBITMQ_DIST_PORT"] = DistributionPort.ToString(CultureInfo.InvariantCulture);
        start.Environment["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = LoopbackDistribution;
        start.Environment["ERL_EPMD_ADDRESS"] = "127.0.0.1";

        await _node.StartAsync(start, AnswersAmqpAsync, StartTimeout, TimeSpan.FromMilliseconds(50), ct).ConfigureAwait(false);

        // The listener opens before the boot ends: rabbitmqctl's commands (add_vhost, ...) need the 'rabbit' app running.
        await CtlAsync("await_startup", "--timeout", "60").ConfigureAwait(false);
    }

    /// <summary>
    /// Stops the node the way an operator does (SIGTERM, which RabbitMQ handles as <c>rabbitmqctl stop</c>: it closes
    /// connections, flushes its queues and message stores and exits) and waits for the VM to exit.
    /// </summary>
    public Task StopAsync() => _node.StopAsync(StopTimeout);

    /// <summary>Kills the node at once    /// <summary>Kills the node at once (SIGKILL): the next start recovers what its files hold.</summary>
    public void Kill() => _node.Kill();

    /// <summary>
    /// Runs <c>rabbitmqctl -n node args…</c> against this node and returns what it printed on stdout (add <c>-q</c> and
    /// <c>--no-table-headers</c> for bare rows); throws with stderr when it fails.
    /// </summary>
    public async Task<string> CtlAsync(params string[] args)
    {
        var start = new ProcessStartInfo(CtlScript) { WorkingDirectory = Directory };
        SetEnvironment(start);
        start.Environment["RABBITMQ_CTL_ERL_ARGS"] = LoopbackDistribution;

        // The CLI's own hidden node listens on a port of this range; parallel calls each need one.
        start.Environment["RABBITMQ_CTL_DIST_PORT_MIN"] = "35672";
        start.Environment["RABBITMQ_CTL_DIST_PORT_MAX"] = "35772";
        return await ServerProcess.RunToolAsync(start, ["-n", NodeName, .. args], CtlTimeout).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _node.Dispose();
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

    // The folder: HOME with the node's Erlang cookie (read by the node and by rabbitmqctl), the config, an empty
    // plugins list, an empty rabbitmq-env.conf (so /etc/rabbitmq/rabbitmq-env.conf is not read) and an empty conf.d.
    private void WriteFiles(string rabbitSettings)
    {
        System.IO.Directory.CreateDirectory(Directory);
        File.WriteAllText(Path.Join(Directory, "advanced.config"), $"[{{rabbit, [{rabbitSettings}]}}].\n");
        System.IO.Directory.CreateDirectory(HomeDirectory);
        System.IO.Directory.CreateDirectory(Path.Join(Directory, "conf.d"));
        System.IO.Directory.CreateDirectory(Path.Join(Directory, "mnesia"));
        System.IO.Directory.CreateDirectory(Path.Join(Directory, "log"));

        string cookie = Path.Join(HomeDirectory, ".erlang.cookie");
        File.WriteAllText(cookie, RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 20));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(cookie, UnixFileMode.UserRead); // Erlang refuses a cookie others may read.
        }

        File.WriteAllText(Path.Join(Directory, "rabbitmq-env.conf"), "");
        File.WriteAllText(Path.Join(Directory, "enabled_plugins"), "[].\n");
        File.WriteAllText(Path.Join(Directory, "rabbitmq.conf"), string.Create(CultureInfo.InvariantCulture, $"""
            listeners.tcp.1 = 127.0.0.1:{Port}
            loopback_users.guest = true
            log.console = true
            log.console.level = info
            disk_free_limit.absolute = 10MB

            """));
        if (Certificates is { } certs)
        {
            File.AppendAllText(Path.Join(Directory, "rabbitmq.conf"), string.Create(CultureInfo.InvariantCulture, $"""
                listeners.ssl.default = 127.0.0.1:{TlsPort}
                ssl_options.cacertfile = {certs.CaFile}
                ssl_options.certfile = {certs.ServerCertFile}
                ssl_options.keyfile = {certs.ServerKeyFile}
                ssl_options.verify = verify_peer
                ssl_options.fail_if_no_peer_cert = {(RequireClientCertificates ? "true" : "false")}

                """));
        }
    }

    // What the node and the CLI share: no RABBITMQ_*/ERL_* settings or systemd socket from the caller, this node's
    // HOME (cookie) and env file, a UTF-8 locale (the CLI warns without one).
    private void SetEnvironment(ProcessStartInfo start)
    {
        foreach (string key in start.Environment.Keys.ToList())
        {
            if (key.StartsWith("RABBITMQ_", StringComparison.Ordinal) || key.StartsWith("ERL_", StringComparison.Ordinal)
                || key is "NOTIFY_SOCKET" or "RUNNING_UNDER_SYSTEMD")
            {
                start.Environment.Remove(key);
            }
        }

        start.Environment["HOME"] = HomeDirectory;
        start.Environment["LANG"] = "C.UTF-8";
        start.Environment["LC_ALL"] = "C.UTF-8";
        start.Environment["RABBITMQ_CONF_ENV_FILE"] = Path.Join(Directory, "rabbitmq-env.conf");
    }

    // Sends the AMQP 0-9-1 protocol header; a broker that is up answers with a method frame (type 1, Connection.Start).
    private async Task<bool> AnswersAmqpAsync(CancellationToken ct)
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token).ConfigureAwait(false);
            NetworkStream stream = client.GetStream();
            await stream.WriteAsync("AMQP\0\0\u0009\u0001"u8.ToArray(), timeout.Token).ConfigureAwait(false);
            var buffer = new byte[1];
            int n = await stream.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
            return n == 1 && buffer[0] == 1;
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }

}
