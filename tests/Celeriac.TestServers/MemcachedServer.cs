using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Celeriac.TestServers;

/// <summary>
/// A real <c>memcached</c> (Debian's package) on a free loopback port, memory only: a stop and start empties it, as
/// with a production memcached. memcached refuses to run as root unless told a user: when the tests do, it is given
/// <c>-u root</c>. Tests read raw items and flush it with <see cref="CommandAsync"/>.
/// </summary>
public sealed class MemcachedServer : IAsyncDisposable
{
    /// <summary>The server binary.</summary>
    public const string Binary = "/usr/bin/memcached";

    private readonly ServerProcess _server;
    private readonly IReadOnlyList<string> _arguments;

    private MemcachedServer(int port, IReadOnlyList<string> arguments)
    {
        _server = new ServerProcess(string.Create(CultureInfo.InvariantCulture, $"memcached on port {port}"));
        Port = port;
        _arguments = arguments;
    }

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>Whether the server process runs.</summary>
    public bool IsRunning => _server.IsRunning;

    /// <summary>What the server printed.</summary>
    public string Log => _server.Log;

    /// <summary>The server as Celery's cache backend names it, <c>127.0.0.1:port</c>.</summary>
    public string Address => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    /// <summary>The result backend URL, <c>cache+memcached://127.0.0.1:port/</c>.</summary>
    public string Url(string scheme = "cache+memcached") => $"{scheme}://{Address}/";

    /// <summary>Starts a server (64 MB, extra <paramref name="arguments"/> such as <c>-vv</c>) and waits until it answers <c>version</c>.</summary>
    public static async Task<MemcachedServer> StartAsync(IReadOnlyList<string>? arguments = null, CancellationToken ct = default)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: scripts/provision.sh installs the memcached package.");
        }

        var server = new MemcachedServer(FreePort.Next(), arguments ?? []);
        await server.StartAgainAsync(ct).ConfigureAwait(false);
        return server;
    }

    /// <summary>Starts the server again on the same port (after <see cref="StopAsync"/> or <see cref="Kill"/>), empty.</summary>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        if (IsRunning)
        {
            return;
        }

        var start = new ProcessStartInfo(Binary);
        foreach (string a in (string[])["-l", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", "0", "-m", "64", "-c", "1024", .. _arguments])
        {
            start.ArgumentList.Add(a);
        }

        if (Environment.UserName == "root")
        {
            start.ArgumentList.Add("-u");
            start.ArgumentList.Add("root");
        }

        await _server.StartAsync(start, AnswersAsync, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(20), ct).ConfigureAwait(false);
    }

    /// <summary>Stops the server (SIGTERM); what it held is gone.</summary>
    public Task StopAsync() => _server.StopAsync(TimeSpan.FromSeconds(20));

    /// <summary>Kills the server at once (SIGKILL).</summary>
    public void Kill() => _server.Kill();

    /// <summary>
    /// Sends one text-protocol command (with its data block, if any) on a connection of its own and returns the reply
    /// up to and including its last line (<c>END</c>, <c>STORED</c>, <c>OK</c>, ...).
    /// </summary>
    public async Task<byte[]> CommandAsync(byte[] command, CancellationToken ct = default)
    {
        using var client = new TcpClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token).ConfigureAwait(false);
        NetworkStream stream = client.GetStream();
        await stream.WriteAsync(command, timeout.Token).ConfigureAwait(false);
        bool isGet = command.AsSpan().StartsWith("get"u8);
        bool isStats = command.AsSpan().StartsWith("stats"u8);
        using var reply = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (isStats ? !reply.GetBuffer().AsSpan(0, (int)reply.Length).EndsWith("END\r\n"u8) : !Complete(reply.GetBuffer().AsSpan(0, (int)reply.Length), isGet))
        {
            int n = await stream.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            reply.Write(buffer, 0, n);
        }

        return reply.ToArray();
    }

    /// <summary>The raw item under a key (its flags and bytes), or <see langword="null"/>.</summary>
    public async Task<(uint Flags, byte[] Data)?> GetRawAsync(string key, CancellationToken ct = default)
    {
        byte[] reply = await CommandAsync(Encoding.UTF8.GetBytes($"get {key}\r\n"), ct).ConfigureAwait(false);
        if (reply.AsSpan().StartsWith("END\r\n"u8))
        {
            return null;
        }

        int lineEnd = reply.AsSpan().IndexOf("\r\n"u8);
        string[] head = Encoding.ASCII.GetString(reply, 0, lineEnd).Split(' ');
        int length = int.Parse(head[3], CultureInfo.InvariantCulture);
        return (uint.Parse(head[2], CultureInfo.InvariantCulture), reply.AsSpan(lineEnd + 2, length).ToArray());
    }

    /// <summary>A number from <c>stats</c> (<c>curr_connections</c>, <c>cmd_get</c>, ...).</summary>
    public async Task<long> StatAsync(string name, CancellationToken ct = default)
    {
        string stats = Encoding.ASCII.GetString(await CommandAsync("stats\r\n"u8.ToArray(), ct).ConfigureAwait(false));
        foreach (string line in stats.Split("\r\n"))
        {
            string[] parts = line.Split(' ');
            if (parts.Length == 3 && parts[0] == "STAT" && parts[1] == name)
            {
                return long.Parse(parts[2], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"stats has no {name}:\n{stats}");
    }

    /// <summary>Empties the server (<c>flush_all</c>).</summary>
    public async Task FlushAsync(CancellationToken ct = default)
    {
        byte[] reply = await CommandAsync("flush_all\r\n"u8.ToArray(), ct).ConfigureAwait(false);
        if (!reply.AsSpan().SequenceEqual("OK\r\n"u8))
        {
            throw new InvalidOperationException("flush_all answered " + Encoding.ASCII.GetString(reply));
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _server.Dispose();
        await Task.Yield();
    }

    private static bool Complete(ReadOnlySpan<byte> reply, bool isGet)
    {
        if (!reply.EndsWith("\r\n"u8))
        {
            return false;
        }

        // A value's data may hold CRLF: a get's reply is complete at END after the announced bytes.
        if (!isGet)
        {
            return true;
        }

        int at = 0;
        while (true)
        {
            ReadOnlySpan<byte> rest = reply[at..];
            int lineEnd = rest.IndexOf("\r\n"u8);
            if (lineEnd < 0)
            {
                return false;
            }

            string line = Encoding.ASCII.GetString(rest[..lineEnd]);
            if (line == "END" || line.StartsWith("SERVER_ERROR", StringComparison.Ordinal) || line.StartsWith("CLIENT_ERROR", StringComparison.Ordinal) || line == "ERROR")
            {
                return at + lineEnd + 2 == reply.Length;
            }

            string[] head = line.Split(' ');
            if (head.Length < 4 || !int.TryParse(head[3], CultureInfo.InvariantCulture, out int length))
            {
                return true;
            }

            at += lineEnd + 2 + length + 2;
            if (at > reply.Length)
            {
                return false;
            }
        }
    }

    private async Task<bool> AnswersAsync(CancellationToken ct)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port, ct).ConfigureAwait(false);
            NetworkStream stream = client.GetStream();
            await stream.WriteAsync("version\r\n"u8.ToArray(), ct).ConfigureAwait(false);
            var buffer = new byte[64];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            int n = await stream.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
            return Encoding.ASCII.GetString(buffer, 0, n).StartsWith("VERSION", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }
}
