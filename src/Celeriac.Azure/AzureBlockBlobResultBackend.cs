using System.Globalization;
using System.Text.RegularExpressions;
using Azure;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Celeriac.Results;
using Microsoft.Extensions.Logging;

namespace Celeriac.Azure;

/// <summary>
/// Celery's Azure Block Blob result backend (<c>azureblockblob://&lt;connection string&gt;</c>): each document is a block
/// blob named <c>&lt;azureblockblob_base_path&gt;celery-task-meta-&lt;id&gt;</c> in the container
/// <c>azureblockblob_container_name</c> (<c>celery</c>), its content Celery's JSON, as Celery's
/// <c>AzureBlockBlobBackend</c> writes and reads it. As Celery's, results never expire here (use a lifecycle rule of the
/// storage account), waiting polls, and chords are joined by <c>celery.chord_unlock</c> (sent with the chord by the
/// client, Celery's or Celeriac's), not by the store.
/// Requests that fail because the service is away are retried with back-off: reads for up to a minute, writes for up
/// to five, then a <see cref="TimeoutException"/> says so; a service that has never answered this backend is tried only
/// for <see cref="ResultBackendOptions.ConnectTimeout"/>, then a <see cref="BrokerUnreachableException"/> says so.
/// </summary>
public sealed partial class AzureBlockBlobResultBackend : KeyValueResultBackend
{
    /// <summary>Celery's default container name (<c>azureblockblob_container_name</c>).</summary>
    public const string DefaultContainer = "celery";

    private readonly BlobServiceClient _service;
    private readonly BlobContainerClient _container;
    private readonly SocketsHttpHandler _handler;
    private readonly string _basePath;
    private readonly string _endpoint;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    // Increments made here go one at a time: optimistic concurrency then only contends with other processes.
    private readonly SemaphoreSlim _increments = new(1, 1);
    private int _down;
    private bool _reached;

    /// <summary>Opens (lazily: no request is made here) the account named by the URL's connection string.</summary>
    public AzureBlockBlobResultBackend(ResultBackendOptions options)
        : base(options)
    {
        string connectionString = UrlText.ConnectionString(options.Url);
        ContainerName = options.Setting("azureblockblob_container_name") is { Length: > 0 } c ? c : DefaultContainer;
        if (!ContainerNamePattern().IsMatch(ContainerName))
        {
            throw new CeleriacConfigurationException($"azureblockblob_container_name '{ContainerName}' is not a valid container name (3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit).");
        }

        _basePath = options.Setting("azureblockblob_base_path") ?? "";
        _handler = new SocketsHttpHandler { ConnectTimeout = Seconds(options, "azureblockblob_connection_timeout", 20) };
        var clientOptions = new BlobClientOptions { Transport = new HttpClientTransport(_handler) };

        // The SDK's own retries are off: RunAsync retries with a patience of its own, and says when it gives up.
        clientOptions.Retry.MaxRetries = 0;
        clientOptions.Retry.NetworkTimeout = Seconds(options, "azureblockblob_read_timeout", 120);
        try
        {
            _service = new BlobServiceClient(connectionString, clientOptions);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
        {
            _handler.Dispose();
            throw new CeleriacConfigurationException($"The result backend URL '{UrlText.Mask(options.Url)}' holds no valid Azure Storage connection string: {e.Message}");
        }

        _container = _service.GetBlobContainerClient(ContainerName);
        _endpoint = _service.Uri.GetLeftPart(UriPartial.Path);
        _logger = options.LoggerFactory.CreateLogger<AzureBlockBlobResultBackend>();
        _time = options.TimeProvider;
    }

    /// <summary>The container the blobs live in (<c>azureblockblob_container_name</c>). <value>celery</value></summary>
    public string ContainerName { get; }

    /// <summary>How long a read keeps retrying while the service is away.</summary>
    internal TimeSpan ReadPatience { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long a write keeps retrying while the service is away.</summary>
    internal TimeSpan WritePatience { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>No store-side join: as Celery's backend (no <c>incr</c>), see <see cref="JoinsChordsByUnlock"/>.</summary>
    public override bool SupportsChords => false;

    /// <summary>As Celery on this store: a client (Celery's or Celeriac's) joins a chord by sending <c>celery.chord_unlock</c>.</summary>
    public override bool JoinsChordsByUnlock => true;

    /// <summary>The blob of a Celery key (<c>azureblockblob_base_path</c> + key, as Celery names it).</summary>
    internal BlobClient Blob(string key) => _container.GetBlobClient(_basePath + key);

    /// <inheritdoc />
    protected override async ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct) =>
        await RunAsync(async () => (await DownloadAsync(Blob(key), ct).ConfigureAwait(false))?.Content.ToArray(), ReadPatience, ct).ConfigureAwait(false);

    /// <summary>
    /// Writes the blob whole (Put Blob, overwriting), as Celery's <c>upload_blob(value, overwrite=True)</c>. Celery keeps
    /// results for ever on this store, so <paramref name="expiry"/> is not applied.
    /// </summary>
    protected override async ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct) =>
        await RunAsync(
            async () =>
            {
                await InContainerAsync(() => Blob(key).UploadAsync(new BinaryData(value), overwrite: true, ct), ct).ConfigureAwait(false);
                return true;
            },
            WritePatience,
            ct).ConfigureAwait(false);

    /// <summary>Deletes the blob; a missing one is already forgotten (Celery's raises instead).</summary>
    protected override async ValueTask DeleteValueAsync(string key, CancellationToken ct) =>
        await RunAsync(
            async () => (await Blob(key).DeleteIfExistsAsync(cancellationToken: ct).ConfigureAwait(false)).Value,
            WritePatience,
            ct).ConfigureAwait(false);

    /// <summary>
    /// Adds one to a counter blob, atomically by optimistic concurrency: the new value is written only if the blob is
    /// still the one read (If-Match its ETag; If-None-Match * when there was none), else it is read again. Celery has no
    /// <c>incr</c> on this store, so only Celeriac reads these blobs.
    /// </summary>
    protected override async ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct)
    {
        await _increments.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await IncrementOnceAsync(Blob(key), ct).ConfigureAwait(false);
        }
        finally
        {
            _increments.Release();
        }
    }

    private async Task<long> IncrementOnceAsync(BlobClient blob, CancellationToken ct)
    {
        for (int attempt = 0; ; attempt++)
        {
            long? written = await RunAsync(
                async () =>
                {
                    BlobDownloadResult? current = await DownloadAsync(blob, ct).ConfigureAwait(false);
                    long next = current is null ? 1 : long.Parse(current.Content.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture) + 1;
                    var conditions = new BlobRequestConditions();
                    if (current is null)
                    {
                        conditions.IfNoneMatch = ETag.All;
                    }
                    else
                    {
                        conditions.IfMatch = current.Details.ETag;
                    }

                    try
                    {
                        await InContainerAsync(
                            () => blob.UploadAsync(BinaryData.FromString(next.ToString(CultureInfo.InvariantCulture)), new BlobUploadOptions { Conditions = conditions }, ct),
                            ct).ConfigureAwait(false);
                        return (long?)next;
                    }
                    catch (RequestFailedException e) when (e.Status is 409 or 412)
                    {
                        return null; // another writer was first
                    }
                },
                WritePatience,
                ct).ConfigureAwait(false);
            if (written is { } value)
            {
                return value;
            }

            // Contended: step aside a little (random, growing), so that a crowd of writers does not collide again at once.
            await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(1, 5 + Math.Min(attempt, 20) * 5)), _time, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Nothing to do when a chord member ends: as Celery's <c>on_chord_part_return</c> on a store without <c>incr</c>, the
    /// <c>celery.chord_unlock</c> task that the client sent with the chord polls the header and sends the body.
    /// </summary>
    public override ValueTask<ChordJoin?> AddChordPartAsync(ChordPartReturn part, CancellationToken ct = default) =>
        ValueTask.FromResult<ChordJoin?>(null);

    /// <summary>The blob's content and properties, or <see langword="null"/> when it (or its container) is missing.</summary>
    private static async Task<BlobDownloadResult?> DownloadAsync(BlobClient blob, CancellationToken ct)
    {
        try
        {
            return (await blob.DownloadContentAsync(ct).ConfigureAwait(false)).Value;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Runs a write; when the container is missing (first use, or deleted since), creates it, as Celery's client does, and writes again.</summary>
    private async Task InContainerAsync(Func<Task> write, CancellationToken ct)
    {
        try
        {
            await write().ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status == 404 && e.ErrorCode == BlobErrorCode.ContainerNotFound)
        {
            if ((await _container.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false)) is not null)
            {
                Log.ContainerCreated(_logger, ContainerName, _endpoint);
            }

            await write().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Runs <paramref name="operation"/>, retrying it with back-off (50 ms doubling to 2 s) while the service is away,
    /// for up to <paramref name="patience"/>; then throws a <see cref="TimeoutException"/> naming the endpoint and the
    /// last error (a <see cref="BrokerUnreachableException"/> after the connect timeout while the service has never
    /// answered). Errors that are the request's own (403, 400, ...) are thrown at once.
    /// </summary>
    private async Task<T> RunAsync<T>(Func<Task<T>> operation, TimeSpan patience, CancellationToken ct)
    {
        long start = _time.GetTimestamp();
        TimeSpan delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                T result = await operation().ConfigureAwait(false);
                Volatile.Write(ref _reached, true);
                if (Interlocked.Exchange(ref _down, 0) != 0)
                {
                    Log.Reachable(_logger, _endpoint);
                }

                return result;
            }
            catch (Exception e) when (IsOutage(e) && !ct.IsCancellationRequested)
            {
                // A service that has never answered is more likely a wrong address or one not started than an outage:
                // the caller hears so within the connect timeout rather than after the patience meant for outages (a
                // shorter patience, which the caller chose, still ends first and says what it always said).
                bool neverReached = !Volatile.Read(ref _reached) && Options.ConnectTimeout < patience;
                TimeSpan limit = neverReached ? Options.ConnectTimeout : patience;
                if (Interlocked.Exchange(ref _down, 1) == 0)
                {
                    if (neverReached)
                    {
                        Log.NeverReached(_logger, _endpoint, Reason(e), Options.ConnectTimeout.TotalSeconds);
                    }
                    else
                    {
                        Log.Unreachable(_logger, _endpoint, Reason(e), patience.TotalSeconds);
                    }
                }

                TimeSpan elapsed = _time.GetElapsedTime(start);
                if (elapsed >= limit)
                {
                    throw neverReached
                        ? new BrokerUnreachableException("Azure Blob storage at " + _endpoint, Options.ConnectTimeout, e)
                        : new TimeoutException($"Azure Blob storage at {_endpoint} did not answer for {patience.TotalSeconds:F0} s: {Reason(e)}", e);
                }

                // The last try falls at the limit, so a call never gives up before it.
                await Task.Delay(delay < limit - elapsed ? delay : limit - elapsed, _time, ct).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
            catch (RequestFailedException e) when (e.Status != 0)
            {
                // An error the service sent back (a denied request, a conflict) is an answer: it is there.
                Volatile.Write(ref _reached, true);
                throw;
            }
        }
    }

    /// <summary>Whether <paramref name="e"/> says the service is away or overloaded, rather than that the request was wrong.</summary>
    internal static bool IsOutage(Exception e) => e switch
    {
        RequestFailedException r => r.Status is 0 or 408 or 429 or 500 or 502 or 503 or 504,
        AggregateException a => a.InnerExceptions.Count > 0 && a.InnerExceptions.All(IsOutage),
        HttpRequestException or IOException or TimeoutException => true,
        OperationCanceledException => true, // a network timeout; the caller's own cancellation is excluded where this is used
        _ => false,
    };

    private static string Reason(Exception e) =>
        (e is RequestFailedException { InnerException: { } inner } ? inner.Message : e.Message).Split('\n')[0].Trim();

    private static TimeSpan Seconds(ResultBackendOptions options, string setting, double fallback)
    {
        string? text = options.Setting(setting);
        if (text is null)
        {
            return TimeSpan.FromSeconds(fallback);
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : throw new CeleriacConfigurationException($"{setting} '{text}' is not a positive number of seconds.");
    }

    [GeneratedRegex("^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$", RegexOptions.CultureInvariant)]
    private static partial Regex ContainerNamePattern();

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        _handler.Dispose();
        _increments.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
