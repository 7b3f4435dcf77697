using Celeriac.Azure;

namespace Celeriac;

/// <summary><c>UseAzureBlob(...)</c>: Celery's Azure Block Blob result backend.</summary>
public static class AzureCeleriacBuilderExtensions
{
    /// <summary>
    /// Keeps results in Azure Block Blob storage at <paramref name="url"/> (<c>azureblockblob://&lt;connection
    /// string&gt;</c>, as Celery's). The provider is registered explicitly.
    /// </summary>
    public static CeleriacBuilder UseAzureBlob(this CeleriacBuilder builder, string url)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseResultBackend(new AzureProvider(), url, ["azureblockblob"]);
    }
}
