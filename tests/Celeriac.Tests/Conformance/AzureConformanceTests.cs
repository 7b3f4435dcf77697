using Azure.Storage.Blobs;
using Celeriac.Azure;
using Celeriac.Results;
using Celeriac.TestServers;

namespace Celeriac.Tests.Conformance;

/// <summary>One azurite (blob service) for a test class.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public AzuriteServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await AzuriteServer.StartAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    /// <summary>A backend on this server in <paramref name="container"/>, with <paramref name="query"/> on its URL.</summary>
    public AzureBlockBlobResultBackend Backend(string container, string query = "", TimeProvider? time = null, TimeSpan? expires = null) =>
        new(new ResultBackendOptions
        {
            Url = UrlText.Parse(Server.Url(query), "result backend"),
            Settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["azureblockblob_container_name"] = container },
            TimeProvider = time ?? TimeProvider.System,
            ResultExpires = expires ?? TimeSpan.FromDays(1),
            PollInterval = TimeSpan.FromMilliseconds(100),
        });

    /// <summary>The SDK's own client of <paramref name="container"/>, to look at what the backend wrote.</summary>
    public BlobContainerClient Container(string container) => new BlobServiceClient(Server.ConnectionString).GetBlobContainerClient(container);

    /// <summary>A fresh container name (each test its own).</summary>
    public static string NewContainer() => "t" + Guid.NewGuid().ToString("N");
}

/// <summary>The result-backend conformance suite on azurite; each test in a container of its own.</summary>
public sealed class AzureResultBackendConformanceTests(AzuriteFixture azurite) : ResultBackendConformanceTests, IClassFixture<AzuriteFixture>
{
    private readonly string _container = AzuriteFixture.NewContainer();

    // Polled through a Node.js emulator that competes with the whole suite for two cores.
    protected override TimeSpan WaitPatience => TimeSpan.FromSeconds(20);

    protected override string? NoExpiryReason => "Celery's Azure Block Blob backend keeps results for ever (a lifecycle rule of the storage account deletes them).";

    protected override string? NoChordJoinReason => "Celery's Azure Block Blob backend has no incr: chords are joined by celery.chord_unlock.";

    protected override ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup) =>
        ValueTask.FromResult<IResultBackend>(azurite.Backend(_container, time: setup.Time, expires: setup.Expires));

    protected override async ValueTask<byte[]?> ReadRawAsync(string key)
    {
        BlobClient blob = azurite.Container(_container).GetBlobClient(key);
        return await blob.ExistsAsync(Ct) ? (await blob.DownloadContentAsync(Ct)).Value.Content.ToArray() : null;
    }

    protected override async ValueTask DisposeStoreAsync() => await azurite.Container(_container).DeleteIfExistsAsync();
}
