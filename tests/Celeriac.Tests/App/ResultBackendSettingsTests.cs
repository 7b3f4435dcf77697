using System.Text;
using Celeriac.Results;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac.Tests.App;

/// <summary>A backend's own settings, under Celery's names, from configuration and from its URL's query.</summary>
public sealed class ResultBackendSettingsTests
{
    [Fact]
    public void AppSettings_ResultBackendSettings_ReachTheBackendOptions_QueryWins()
    {
        var options = new CeleriacOptions();
        CeleriacSettings.ApplyJson(options, Encoding.UTF8.GetBytes("""
            {"Celeriac": {"ResultBackendSettings": {"s3_bucket": "results", "s3_base_path": "celery/", "database_table_names": {"task": "t"}}}}
            """));

        var backend = new ResultBackendOptions
        {
            Url = new Uri("s3://?s3_bucket=other%20bucket&flag"),
            Settings = new Dictionary<string, string>(options.ResultBackendSettings, StringComparer.OrdinalIgnoreCase),
        };

        Assert.Equal("other bucket", backend.Setting("S3_BUCKET"));
        Assert.Equal("celery/", backend.Setting("s3_base_path"));
        // An object setting stays JSON (as configuration carries it: compact).
        Assert.Equal("""{"task":"t"}""", backend.Setting("database_table_names"));
        Assert.Equal("", backend.Setting("flag"));
        Assert.Null(backend.Setting("s3_region"));
    }

    [Fact]
    public async Task Configuration_ResultBackendSettings_AreReadByAddCeleriac()
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Celeriac:BrokerUrl"] = "memory://",
            ["Celeriac:ResultBackendSettings:s3_bucket"] = "results",
        }).Build();
        var services = new ServiceCollection();
        services.AddSingleton(configuration);
        services.AddCeleriac();
        await using ServiceProvider sp = services.BuildServiceProvider();

        Assert.Equal("results", sp.GetRequiredService<CeleriacApp>().Options.ResultBackendSettings["S3_Bucket"]);
    }
}
