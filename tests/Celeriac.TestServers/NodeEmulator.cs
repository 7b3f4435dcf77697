using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http;

namespace Celeriac.TestServers;

/// <summary>
/// An npm emulator (s3rver, dynalite) run with Debian's <c>node</c> from <c>tests/emulators/node_modules</c>, where
/// <c>scripts/provision.sh</c> installs them (<c>npm ci</c>), on a free loopback port in its own temporary folder;
/// stopped, killed and started again on the same port and folder for outage tests.
/// </summary>
public sealed class NodeEmulator : IAsyncDisposable
{
    /// <summary>The node binary.</summary>
    public const string Node = "/usr/bin/node";

    private static readonly HttpClient s_http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };
    private readonly ServerProcess _server;
    private readonly string _script;
    private readonly Func<int, string, IReadOnlyList<string>> _arguments;

    private NodeEmulator(string name, string script, Func<int, string, IReadOnlyList<string>> arguments, int port, string directory)
    {
        _server = new ServerProcess(string.Create(CultureInfo.InvariantCulture, $"{name} on port {port}"));
        _script = script;
        _arguments = arguments;
        Port = port;
        Directory = directory;
    }

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>The emulator's data folder (deleted on dispose).</summary>
    public string Directory { get; }

    /// <summary>The emulator's HTTP endpoint.</summary>
    public string Endpoint => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}");

    /// <summary>Whether the emulator runs.</summary>
    public bool IsRunning => _server.IsRunning;

    /// <summary>What the emulator printed.</summary>
    public string Log => _server.Log;

    /// <summary>
    /// Starts <paramref name="package"/>'s <paramref name="script"/> (a path inside its npm package) with the arguments
    /// <paramref name="arguments"/> makes of the port and data folder, and waits until it answers HTTP.
    /// </summary>
    public static async Task<NodeEmulator> StartAsync(string package, string script, Func<int, string, IReadOnlyList<string>> arguments, CancellationToken ct = default)
    {
        if (!File.Exists(Node))
        {
            throw new InvalidOperationException($"{Node} is missing: scripts/provision.sh installs the nodejs package.");
        }

        string path = Path.Join(ModulesDirectory(), package, script);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{path} is missing: run scripts/provision.sh (or: cd tests/emulators && npm ci --no-audit --no-fund).");
        }

        string dir = Path.Combine(Path.GetTempPath(), "celeriac-" + package + "-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var emulator = new NodeEmulator(package, path, arguments, FreePort.Next(), dir);
        try
        {
            await emulator.StartAgainAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await emulator.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return emulator;
    }

    /// <summary>The <c>node_modules</c> folder of <c>tests/emulators</c>, found upwards from the test's folder (or <c>CELERIAC_EMULATORS</c>).</summary>
    public static string ModulesDirectory()
    {
        if (Environment.GetEnvironmentVariable("CELERIAC_EMULATORS") is { Length: > 0 } configured)
        {
            return configured;
        }

        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Join(d.FullName, "tests", "emulators", "node_modules");
            if (System.IO.Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"tests/emulators/node_modules not found above {AppContext.BaseDirectory}: run scripts/provision.sh.");
    }

    /// <summary>Starts the emulator again on the same port and folder (after <see cref="StopAsync"/> or <see cref="Kill"/>).</summary>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        if (IsRunning)
        {
            return;
        }

        var start = new ProcessStartInfo(Node) { WorkingDirectory = Directory };
        start.ArgumentList.Add(_script);
        foreach (string a in _arguments(Port, Directory))
        {
            start.ArgumentList.Add(a);
        }

        await _server.StartAsync(start, AnswersAsync, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(50), ct).ConfigureAwait(false);
    }

    /// <summary>Stops the emulator (SIGTERM).</summary>
    public Task StopAsync() => _server.StopAsync(TimeSpan.FromSeconds(20));

    /// <summary>Kills the emulator at once (SIGKILL).</summary>
    public void Kill() => _server.Kill();

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

    private async Task<bool> AnswersAsync(CancellationToken ct)
    {
        try
        {
            using HttpResponseMessage response = await s_http.GetAsync(new Uri(Endpoint + "/"), ct).ConfigureAwait(false);
            return response.StatusCode != HttpStatusCode.ServiceUnavailable;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
    }
}
