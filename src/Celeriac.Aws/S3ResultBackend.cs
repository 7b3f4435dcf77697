using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Celeriac.Results;
using Microsoft.Extensions.Logging;

namespace Celeriac.Aws;

/// <summary>
/// Celery's S3 result backend (<c>s3://</c>): one object per key, named <c>s3_base_path</c> + <c>celery-task-meta-&lt;id&gt;</c>
/// in <c>s3_bucket</c>, holding Celery's JSON document, so that Python Celery reads what Celeriac writes and the other
/// way round. The settings are Celery's: <c>s3_bucket</c> (required), <c>s3_base_path</c>, <c>s3_endpoint_url</c>,
/// <c>s3_region</c>, <c>s3_access_key_id</c>, <c>s3_secret_access_key</c>, each a query parameter of the URL or a
/// <c>ResultBackendSettings</c> entry.
/// </summary>
/// <remarks>
/// <para>Expiry: as Celery's, an object is never deleted by the backend (S3 has no per-object time to live); a result
/// older than <c>result_expires</c> (by the object's Last-Modified) reads as missing here, and a bucket lifecycle rule
/// on the prefix is what deletes old results.</para>
/// <para>Chords: S3 has no atomic increment, so a chord on S3 is joined as Celery 5.2 joins it, by the
/// <c>celery.chord_unlock</c> task that the client (Celery's or Celeriac's) sends with it and that either worker runs;
/// a finished member reports nothing (<see cref="JoinsChordsByUnlock"/>).</para>
/// </remarks>
public sealed class S3ResultBackend : KeyValueResultBackend
{
    private readonly AmazonS3Client _client;
    private readonly Outage _outage;

    /// <summary>Reads the settings and makes the client; nothing is sent until the first call.</summary>
    public S3ResultBackend(ResultBackendOptions options)
        : base(options)
    {
        Bucket = options.Setting("s3_bucket") is { Length: > 0 } bucket
            ? bucket
            : throw new CeleriacConfigurationException("The s3:// result backend needs a bucket: set s3_bucket (a ResultBackendSettings entry, or ?s3_bucket= in the URL).");
        BasePath = options.Setting("s3_base_path") ?? "";
        Uri? endpoint = null;
        if (options.Setting("s3_endpoint_url") is { Length: > 0 } url && !Uri.TryCreate(url, UriKind.Absolute, out endpoint))
        {
            throw new CeleriacConfigurationException($"s3_endpoint_url '{url}' is not an absolute URL.");
        }

        string region = AwsClientSetup.Region(options.Setting("s3_region"));
        var config = new AmazonS3Config
        {
            // An emulator or a non-AWS store answers at one host: the bucket goes in the path, as boto3 does for an endpoint URL.
            ForcePathStyle = endpoint is not null,
            DisableS3ExpressSessionAuth = true,

            // Checksums only where S3 requires them: Celery's boto3 sends none, and an emulator may not know the newer ones.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        AwsClientSetup.Configure(config, endpoint, region);
        AWSCredentials? credentials = AwsClientSetup.Credentials(options.Setting("s3_access_key_id"), options.Setting("s3_secret_access_key"), AwsClientSetup.IsLocal(endpoint), "s3://");
        _client = credentials is null ? new AmazonS3Client(config) : new AmazonS3Client(credentials, config);
        _outage = new Outage("S3", (endpoint?.ToString() ?? region) + " bucket " + Bucket, options.LoggerFactory.CreateLogger("Celeriac.Aws.S3"), options.ConnectTimeout);
    }

    /// <summary>The bucket (<c>s3_bucket</c>).</summary>
    public string Bucket { get; }

    /// <summary>The prefix of every object's key (<c>s3_base_path</c>), as given: Celery adds it without a separator.</summary>
    public string BasePath { get; }

    /// <summary>How long a read retries while S3 is away before it fails. <value>60 s</value></summary>
    internal TimeSpan ReadPatience { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a write retries while S3 is away before it fails. <value>5 min</value></summary>
    internal TimeSpan WritePatience { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The object key of a backend key, as Celery's <c>_get_s3_object</c>.</summary>
    public string ObjectKey(string key) => BasePath + key;

    /// <inheritdoc />
    public override bool SupportsChords => false;

    /// <summary>As Celery on this store: a client joins a chord by sending <c>celery.chord_unlock</c> with it.</summary>
    public override bool JoinsChordsByUnlock => true;

    /// <inheritdoc />
    protected override async ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct) =>
        await _outage.RunAsync(token => ReadAsync(key, token), ReadPatience, ct).ConfigureAwait(false);

    /// <summary>
    /// What arrived fails the SDK's checksum, its ETag is not the hex digest it must be, or its body ended before its
    /// Content-Length (s3rver serves a file another writer is rewriting).
    /// </summary>
    private static bool IsGarbledRead(Exception e) =>
        (e is AmazonClientException && e.Message.Contains("hash", StringComparison.OrdinalIgnoreCase))
        || e is ArgumentOutOfRangeException { ParamName: "hex" }
        || e is HttpIOException { HttpRequestError: HttpRequestError.ResponseEnded };

    private async Task<byte[]?> ReadAsync(string key, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                using GetObjectResponse response = await _client.GetObjectAsync(Bucket, ObjectKey(key), ct).ConfigureAwait(false);
                if (Options.ResultExpires is { } expires && response.LastModified is { } modified &&
                    new DateTimeOffset(modified.ToUniversalTime(), TimeSpan.Zero) + expires < Options.TimeProvider.GetUtcNow())
                {
                    return null;
                }

                using var buffer = new MemoryStream(response.ContentLength is > 0 and < int.MaxValue ? (int)response.ContentLength : 256);
                await response.ResponseStream.CopyToAsync(buffer, ct).ConfigureAwait(false);
                return buffer.ToArray();
            }
            catch (Exception e) when (attempt < 5 && IsGarbledRead(e))
            {
                // A transfer garbled, or (on an emulator that writes objects in place, as s3rver) an object read while
                // another writer replaced it: the next read, a moment later, gets a whole one.
                await Task.Delay(attempt * 10, ct).ConfigureAwait(false);
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode != "NoSuchBucket")
            {
                return null;
            }
            catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchBucket")
            {
                throw NoBucket(e);
            }
        }
    }

    /// <inheritdoc />
    protected override async ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct) =>
        await _outage.RunAsync(
            async token =>
            {
                try
                {
                    using var body = new MemoryStream(value, writable: false);
                    await _client.PutObjectAsync(new PutObjectRequest { BucketName = Bucket, Key = ObjectKey(key), InputStream = body, UseChunkEncoding = false, AutoCloseStream = false }, token).ConfigureAwait(false);
                    return true;
                }
                catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchBucket")
                {
                    throw NoBucket(e);
                }
            },
            WritePatience,
            CancellationToken.None).ConfigureAwait(false);

    /// <inheritdoc />
    protected override async ValueTask DeleteValueAsync(string key, CancellationToken ct) =>
        await _outage.RunAsync(
            async token =>
            {
                try
                {
                    await _client.DeleteObjectAsync(Bucket, ObjectKey(key), token).ConfigureAwait(false);
                    return true;
                }
                catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchBucket")
                {
                    throw NoBucket(e);
                }
            },
            WritePatience,
            ct).ConfigureAwait(false);

    /// <summary>S3 has no atomic increment (Celery's S3 backend has no <c>incr</c>).</summary>
    protected override ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct) =>
        throw new NotSupportedException("The S3 result backend has no atomic counter, so it cannot join chords (Celery joins them with celery.chord_unlock).");

    /// <summary>
    /// Nothing to do, as Celery's S3 backend: the chord's <c>celery.chord_unlock</c> task joins it, polling the members'
    /// results.
    /// </summary>
    public override ValueTask<ChordJoin?> AddChordPartAsync(ChordPartReturn part, CancellationToken ct = default) => ValueTask.FromResult<ChordJoin?>(null);

    private CeleriacConfigurationException NoBucket(AmazonS3Exception e) =>
        new($"The S3 bucket '{Bucket}' does not exist ({_outage.Describe}): create it first (Celery does not create it either).", e);

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
