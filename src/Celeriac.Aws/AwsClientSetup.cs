using Amazon;
using Amazon.Runtime;

namespace Celeriac.Aws;

/// <summary>
/// What the S3 and DynamoDB clients share: credentials, region, and a configuration that talks only to the endpoint it
/// is given (no instance-metadata lookups for a region or credentials when they are given, no endpoint discovery).
/// </summary>
internal static class AwsClientSetup
{
    /// <summary>The region when nothing names one (Celery's local DynamoDB uses it too).</summary>
    public const string DefaultRegion = "us-east-1";

    /// <summary>
    /// The credentials: the given key pair; else the environment's <c>AWS_ACCESS_KEY_ID</c>/<c>AWS_SECRET_ACCESS_KEY</c>;
    /// else, for a local endpoint (an emulator), fixed dummy ones; else the SDK's default chain (profile, container or
    /// instance role), as boto3 does.
    /// </summary>
    public static AWSCredentials? Credentials(string? accessKey, string? secretKey, bool localEndpoint, string backend)
    {
        if (!string.IsNullOrEmpty(accessKey) || !string.IsNullOrEmpty(secretKey))
        {
            if (string.IsNullOrEmpty(accessKey) || string.IsNullOrEmpty(secretKey))
            {
                throw new CeleriacConfigurationException($"The {backend} result backend needs both the access key id and the secret access key, or neither.");
            }

            return new BasicAWSCredentials(accessKey, secretKey);
        }

        string? envKey = Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID");
        string? envSecret = Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY");
        if (!string.IsNullOrEmpty(envKey) && !string.IsNullOrEmpty(envSecret))
        {
            string? token = Environment.GetEnvironmentVariable("AWS_SESSION_TOKEN");
            return string.IsNullOrEmpty(token) ? new BasicAWSCredentials(envKey, envSecret) : new SessionAWSCredentials(envKey, envSecret, token);
        }

        return localEndpoint ? new BasicAWSCredentials("celeriac", "celeriac") : null;
    }

    /// <summary>The region: the given one, else the environment's <c>AWS_REGION</c>/<c>AWS_DEFAULT_REGION</c>, else us-east-1.</summary>
    public static string Region(string? region) =>
        !string.IsNullOrEmpty(region) ? region
        : Environment.GetEnvironmentVariable("AWS_REGION") is { Length: > 0 } r ? r
        : Environment.GetEnvironmentVariable("AWS_DEFAULT_REGION") is { Length: > 0 } d ? d
        : DefaultRegion;

    /// <summary>Whether <paramref name="endpoint"/> is on this machine or a literal address (an emulator, DynamoDB Local).</summary>
    public static bool IsLocal(Uri? endpoint) =>
        endpoint is not null && (endpoint.IsLoopback || endpoint.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6);

    /// <summary>Points <paramref name="config"/> at <paramref name="endpoint"/> (or the region's AWS endpoint) with bounded retries and timeouts.</summary>
    public static void Configure(ClientConfig config, Uri? endpoint, string region)
    {
        if (endpoint is not null)
        {
            config.ServiceURL = endpoint.ToString();
            config.AuthenticationRegion = region;
            config.UseHttp = endpoint.Scheme == Uri.UriSchemeHttp;
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
        }

        config.EndpointDiscoveryEnabled = false;
        config.IgnoreConfiguredEndpointUrls = true;

        // The backend's own loop retries through outages, with a patience the caller chose; the SDK tries twice more.
        config.MaxErrorRetry = 2;
        config.Timeout = TimeSpan.FromSeconds(15);
    }
}
