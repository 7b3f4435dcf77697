using Celeriac;
using Celeriac.Aws;

[assembly: CeleriacProvider(typeof(AwsProvider))]

namespace Celeriac.Aws;

/// <summary>Registers <c>s3://</c> and <c>dynamodb://</c> as result backends.</summary>
public sealed class AwsProvider : ICeleriacProvider
{
    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.AddResultBackend("s3", static o => new S3ResultBackend(o));
        registry.AddResultBackend("dynamodb", static o => new DynamoDbResultBackend(o));
    }
}
