using System.Globalization;

namespace Celeriac.TestServers;

/// <summary>
/// A real DynamoDB emulator, <c>dynalite</c> (npm), on a free loopback port with its LevelDB data in its own folder
/// (so a restart keeps what it held); tables become ACTIVE at once. Each test uses a table of its own.
/// </summary>
public sealed class DynamoDbServer : IAsyncDisposable
{
    private DynamoDbServer(NodeEmulator emulator) => Emulator = emulator;

    /// <summary>The emulator process.</summary>
    public NodeEmulator Emulator { get; }

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port => Emulator.Port;

    /// <summary>The endpoint URL.</summary>
    public string Endpoint => Emulator.Endpoint;

    /// <summary>Celery's URL for a local DynamoDB with the given table: <c>dynamodb://key:secret@localhost:port/table</c>.</summary>
    public string Url(string table, string query = "") =>
        string.Create(CultureInfo.InvariantCulture, $"dynamodb://celeriac:celeriac@localhost:{Port}/{table}{query}");

    /// <summary>A fresh table name.</summary>
    public static string NewTable() => "t" + Guid.NewGuid().ToString("N")[..20];

    /// <summary>Starts dynalite and waits until it answers.</summary>
    public static async Task<DynamoDbServer> StartAsync(CancellationToken ct = default) =>
        new(await NodeEmulator.StartAsync(
            "dynalite",
            "cli.js",
            (port, dir) => ["--host", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture), "--path", dir, "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"],
            ct).ConfigureAwait(false));

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Emulator.DisposeAsync();
}
