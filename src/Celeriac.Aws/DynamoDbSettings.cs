using System.Globalization;
using Celeriac.Results;

namespace Celeriac.Aws;

/// <summary>
/// Celery's DynamoDB URL, <c>dynamodb://key:secret@region:port/table?read=N&amp;write=N&amp;ttl_seconds=N</c>, read as
/// Celery's <c>DynamoDBBackend</c> reads it: a host of <c>localhost</c> (or an address) means a local endpoint
/// <c>http://host:port</c> in us-east-1, any other host is the AWS region; <c>dynamodb_endpoint_url</c> overrides the endpoint.
/// </summary>
internal sealed record DynamoDbSettings(
    string Table, string Region, Uri? Endpoint, string? AccessKey, string? SecretKey, int ReadCapacity, int WriteCapacity, int? TtlSeconds)
{
    /// <summary>Celery's default table name.</summary>
    public const string DefaultTable = "celery";

    /// <summary>Parses the backend's URL and settings; a bad value is a <see cref="CeleriacConfigurationException"/>.</summary>
    public static DynamoDbSettings Parse(ResultBackendOptions options)
    {
        Uri url = options.Url;
        string? key = null, secret = null;
        if (url.UserInfo.Length > 0)
        {
            int colon = url.UserInfo.IndexOf(':', StringComparison.Ordinal);
            key = Uri.UnescapeDataString(colon < 0 ? url.UserInfo : url.UserInfo[..colon]);
            secret = colon < 0 ? null : Uri.UnescapeDataString(url.UserInfo[(colon + 1)..]);
            key = key.Length == 0 ? null : key;
            secret = string.IsNullOrEmpty(secret) ? null : secret;
            if ((key is null) != (secret is null))
            {
                throw new CeleriacConfigurationException($"dynamodb:// needs both the Access Key ID and the Secret in '{Redacted(url)}', or neither.");
            }
        }

        string host = url.Host;
        Uri? endpoint = null;
        string region;
        if (host == "localhost" || url.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6)
        {
            // Celery's "downloadable, local version of DynamoDB".
            endpoint = new Uri("http://" + url.Authority);
            region = AwsClientSetup.DefaultRegion;
        }
        else
        {
            region = host.Length > 0 ? host : AwsClientSetup.Region(null);
        }

        if (options.Setting("dynamodb_endpoint_url") is { Length: > 0 } configured)
        {
            endpoint = Uri.TryCreate(configured, UriKind.Absolute, out Uri? parsed)
                ? parsed
                : throw new CeleriacConfigurationException($"dynamodb_endpoint_url '{configured}' is not an absolute URL.");
        }

        string table = Uri.UnescapeDataString(url.AbsolutePath.Trim('/'));
        int? ttl = Number(options, "ttl_seconds", null);
        return new DynamoDbSettings(
            table.Length > 0 ? table : DefaultTable,
            region,
            endpoint,
            key,
            secret,
            Number(options, "read", 1) ?? 1,
            Number(options, "write", 1) ?? 1,
            ttl == 0 ? null : ttl);
    }

    private static int? Number(ResultBackendOptions options, string name, int? fallback) =>
        options.Setting(name) is not { Length: > 0 } text ? fallback
        : int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value) ? value
        : throw new CeleriacConfigurationException($"dynamodb:// setting {name} must be a whole number; got '{text}'.");

    /// <summary>The URL without its secret, for messages.</summary>
    public static string Redacted(Uri url) => url.UserInfo.Length == 0 ? url.ToString() : url.ToString().Replace(url.UserInfo + "@", "***@", StringComparison.Ordinal);
}
