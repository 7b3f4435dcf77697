using Celeriac.Results;

namespace Celeriac.Tests.App;

/// <summary>URLs that carry a connection string (Celery's <c>azureblockblob://</c>), which <see cref="Uri"/> cannot parse.</summary>
public sealed class ConnectionStringUrlTests
{
    private const string Key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private const string ConnectionString = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + Key + ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;";

    [Fact]
    public void Parse_AzureBlockBlob_KeepsSchemeAndConnectionString()
    {
        Uri url = UrlText.Parse("azureblockblob://" + ConnectionString, "result backend");

        Assert.Equal("azureblockblob", url.Scheme);
        Assert.Equal(ConnectionString, UrlText.ConnectionString(url));
        Assert.Equal("", url.Query);
    }

    [Fact]
    public void Parse_AzureBlockBlobWithQuery_QueryIsSettingsNotConnectionString()
    {
        Uri url = UrlText.Parse("azureblockblob://UseDevelopmentStorage=true?azureblockblob_base_path=a%2Fb/&azureblockblob_container_name=results", "result backend");
        var options = new ResultBackendOptions { Url = url };

        Assert.Equal("UseDevelopmentStorage=true", UrlText.ConnectionString(url));
        Assert.Equal("a/b/", options.Setting("azureblockblob_base_path"));
        Assert.Equal("results", options.Setting("azureblockblob_container_name"));
    }

    [Theory]
    [InlineData("azureblockblob://")]
    [InlineData("azureblockblob://?azureblockblob_base_path=x")]
    public void Parse_AzureBlockBlobWithoutConnectionString_ConfigurationError(string url)
    {
        var error = Assert.Throws<CeleriacConfigurationException>(() => UrlText.Parse(url, "result backend"));

        Assert.Contains("result backend URL", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mask_AzureBlockBlob_AccountKeyHiddenAsCeleryHidesIt()
    {
        // Celery's AzureBlockBlobBackend.as_uri(): each AccountKey= part becomes AccountKey=**.
        const string expected = "azureblockblob://DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=**;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;";

        Assert.Equal(expected, UrlText.Mask("azureblockblob://" + ConnectionString));
        Assert.Equal(expected, UrlText.Mask(UrlText.Parse("azureblockblob://" + ConnectionString, "result backend")));
        Assert.Equal("azureblockblob://BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=**", UrlText.Mask("azureblockblob://BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2020&sig=abc"));
    }

    [Theory]
    [InlineData("redis://user:secret@host:6379/0?ssl_cert_reqs=none")]
    [InlineData("sqlite:///celeriac.db")]
    [InlineData("amqp://guest:guest@localhost:5672//")]
    public void Parse_OtherUrls_AsBefore(string text)
    {
        Uri url = UrlText.Parse(text, "broker");

        Assert.Equal(new Uri(text), url);
        Assert.Equal(text, url.OriginalString);
        Assert.Throws<CeleriacConfigurationException>(() => UrlText.ConnectionString(url));
    }

    [Fact]
    public void CreateResultBackend_AzureBlockBlob_ErrorsMaskTheKey()
    {
        var error = Assert.Throws<CeleriacConfigurationException>(() =>
            new ProviderRegistry().CreateResultBackend(new ResultBackendOptions { Url = UrlText.Parse("azureblockblob://Foo=bar;AccountKey=s3cretkey", "result backend") }));

        Assert.DoesNotContain("s3cretkey", error.Message, StringComparison.Ordinal);
    }
}
