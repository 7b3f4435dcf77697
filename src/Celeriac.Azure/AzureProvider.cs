using Celeriac;
using Celeriac.Azure;

[assembly: CeleriacProvider(typeof(AzureProvider))]

namespace Celeriac.Azure;

/// <summary>Registers <c>azureblockblob://</c> as a result backend.</summary>
public sealed class AzureProvider : ICeleriacProvider
{
    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.AddResultBackend("azureblockblob", static o => new AzureBlockBlobResultBackend(o));
    }
}
