using System.Globalization;
using System.Net.Http;

namespace Celeriac.TestServers;

/// <summary>
/// A real S3 emulator, <c>s3rver</c> (npm), on a free loopback port with its own data folder; each test makes a bucket
/// of its own (<see cref="CreateBucketAsync"/>).
/// </summary>
public sealed class S3Server : IAsyncDisposable
{
    private static readonly HttpClient s_http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };

    private S3Server(NodeEmulator emulator) => Emulator = emulator;

    /// <summary>The emulator process.</summary>
    public NodeEmulator Emulator { get; }

    /// <summary>The endpoint URL (Celery's <c>s3_endpoint_url</c>).</summary>
    public string Endpoint => Emulator.Endpoint;

    /// <summary>Starts s3rver and waits until it answers.</summary>
    public static async Task<S3Server> StartAsync(CancellationToken ct = default) =>
        new(await NodeEmulator.StartAsync(
            "s3rver",
            "bin/s3rver.js",
            (port, dir) => ["--directory", dir, "--address", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture), "--silent", "--no-vhost-buckets"],
            ct).ConfigureAwait(false));

    /// <summary>Creates a bucket with a fresh name (anonymous PUT, which s3rver allows) and returns its name.</summary>
    public async Task<string> CreateBucketAsync(CancellationToken ct = default)
    {
        string name = "test-" + Guid.NewGuid().ToString("N")[..20];
        using HttpResponseMessage response = await s_http.PutAsync(new Uri(Endpoint + "/" + name), null, ct).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        return name;
    }

    /// <summary>The object keys in <paramref name="bucket"/>'s data folder (s3rver stores an object as a folder of files).</summary>
    public IReadOnlyList<string> ObjectKeys(string bucket)
    {
        string root = Path.Join(Emulator.Directory, bucket);
        return [.. System.IO.Directory.EnumerateFiles(root, "*._S3rver_object", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f)[..^"._S3rver_object".Length].Replace(Path.DirectorySeparatorChar, '/'))
            .Order(StringComparer.Ordinal)];
    }

    /// <summary>Reads an object anonymously, or null when missing.</summary>
    public async Task<byte[]?> ReadObjectAsync(string bucket, string key, CancellationToken ct = default)
    {
        using HttpResponseMessage response = await s_http.GetAsync(new Uri(Endpoint + "/" + bucket + "/" + key), ct).ConfigureAwait(false);
        return response.StatusCode == System.Net.HttpStatusCode.NotFound ? null : await response.EnsureSuccessStatusCode().Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Emulator.DisposeAsync();
}
