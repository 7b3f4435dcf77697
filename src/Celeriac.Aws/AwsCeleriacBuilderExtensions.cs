using Celeriac.Aws;

namespace Celeriac;

/// <summary><c>UseS3(...)</c> and <c>UseDynamoDb(...)</c>: Celery's AWS result backends.</summary>
public static class AwsCeleriacBuilderExtensions
{
    /// <summary>
    /// Keeps results in S3 (<c>s3://</c>, with the bucket and the rest in <c>ResultBackendSettings</c> under Celery's
    /// names: <c>s3_bucket</c>, <c>s3_endpoint_url</c>, ...). The provider is registered explicitly.
    /// </summary>
    public static CeleriacBuilder UseS3(this CeleriacBuilder builder, string url = "s3://")
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseResultBackend(new AwsProvider(), url, ["s3"]);
    }

    /// <summary>
    /// Keeps results in DynamoDB at <paramref name="url"/> (<c>dynamodb://key:secret@region:port/table</c>, as Celery's).
    /// The provider is registered explicitly.
    /// </summary>
    public static CeleriacBuilder UseDynamoDb(this CeleriacBuilder builder, string url)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseResultBackend(new AwsProvider(), url, ["dynamodb"]);
    }
}
