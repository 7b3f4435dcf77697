using System.Diagnostics;
using System.Globalization;

namespace Celeriac.TestServers;

/// <summary>
/// Azurite's blob service (the npm package, at the version of <c>tests/emulators/package-lock.json</c>, installed by
/// <c>scripts/provision.sh</c>) on a free loopback port with its own data folder, telemetry off. It holds the well-known
/// development account (<c>devstoreaccount1</c>); tests isolate themselves by container or base path.
/// </summary>
public sealed class AzuriteServer : IAsyncDisposable
{
    /// <summary>Azurite's development account (the same everywhere, published by Microsoft: not a secret).</summary>
    public const string AccountName = "devstoreaccount1";

    /// <summary>The development account's key.</summary>
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly ServerProcess _server;

    private AzuriteServer(int port, string directory)
    {
        _server = new ServerProcess(string.Create(CultureInfo.InvariantCulture, $"azurite-blob on port {port}"));
        Port = port;
        Directory = directory;
    }

    /// <summary>The blob service's TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>The data folder (deleted on dispose).</summary>
    public string Directory { get; }

    /// <summary>Whether the server process runs.</summary>
    public bool IsRunning => _server.IsRunning;

    /// <summary>What the server printed.</summary>
    public string Log => _server.Log;

    /// <summary>The account's connection string, with its blob endpoint on this server.</summary>
    public string ConnectionString => string.Create(
        CultureInfo.InvariantCulture,
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};BlobEndpoint=http://127.0.0.1:{Port}/{AccountName};");

    /// <summary>Celery's result backend URL for this server, with an optional query (<c>?azureblockblob_base_path=...</c>).</summary>
    public string Url(string query = "") => "azureblockblob://" + ConnectionString + query;

    /// <summary>Azurite's blob service script under <c>tests/emulators/node_modules</c>.</summary>
    public static string Script => Path.Combine(Emulators, "node_modules", "azurite", "dist", "src", "blob", "main.js");

    private static string Emulators
    {
        get
        {
            for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "tests", "emulators");
                if (File.Exists(Path.Combine(candidate, "package.json")))
                {
                    return candidate;
                }
            }

            throw new InvalidOperationException($"No tests/emulators folder above {AppContext.BaseDirectory}.");
        }
    }

    /// <summary>Starts a server and waits until it answers HTTP.</summary>
    public static async Task<AzuriteServer> StartAsync(CancellationToken ct = default)
    {
        if (!File.Exists(Script))
        {
            throw new InvalidOperationException($"{Script} is missing: scripts/provision.sh installs the emulators (npm ci in tests/emulators).");
        }

        string dir = Path.Combine(Path.GetTempPath(), "celeriac-azurite-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var server = new AzuriteServer(FreePort.Next(), dir);
        await server.StartAgainAsync(ct).ConfigureAwait(false);
        return server;
    }

    /// <summary>Starts the server again on the same port and folder (after <see cref="StopAsync"/> or <see cref="Kill"/>); what it held is kept.</summary>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        if (IsRunning)
        {
            return;
        }

        var start = new ProcessStartInfo("/usr/bin/node") { WorkingDirectory = Directory };
        foreach (string a in (string[])[
            Script, "--blobHost", "127.0.0.1", "--blobPort", Port.ToString(CultureInfo.InvariantCulture), "--location", Directory,
            "--disableTelemetry", "--skipApiVersionCheck", "--silent"])
        {
            start.ArgumentList.Add(a);
        }

        await _server.StartAsync(start, AnswersAsync, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(50), ct).ConfigureAwait(false);
    }

    /// <summary>Stops the server (SIGTERM).</summary>
    public Task StopAsync() => _server.StopAsync(TimeSpan.FromSeconds(20));

    /// <summary>Kills the server at once (SIGKILL).</summary>
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
            // Any HTTP answer (an unsigned request is refused) means the service listens.
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            using HttpResponseMessage response = await http.GetAsync(new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{Port}/{AccountName}?comp=list")), ct).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }
}
