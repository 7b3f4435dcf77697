using Celeriac.Tests.Conformance;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Celeriac.Tests.Hosting;

/// <summary>
/// <c>UseRedis(...)</c>, <c>UseSqlite(...)</c> and the other packages' builder calls: a hosted worker and a producer
/// from DI on a real Redis (the class's own server) and on a SQLite file of the test's own.
/// </summary>
public sealed class BuilderExtensionTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);

    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-builder-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>A host with the Quickstart's tasks, a worker on a queue of its own, and the broker the call sets.</summary>
    private static IHost NewHost(Action<CeleriacBuilder> use)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        CeleriacBuilder celeriac = builder.Services.AddCeleriac(o => o.DefaultQueue = "builder-" + Guid.NewGuid().ToString("N")[..8])
            .AddTasksFromAssemblyOf<Quickstart.FlakyException>() // the Quickstart's tasks (Tasks is static)
            .AddWorker(w =>
            {
                w.Concurrency = 2;
                w.WithoutMingle = true;
            });
        use(celeriac);
        return builder.Build();
    }

    private static async Task<long> AddAsync(IHost host)
    {
        ICeleriacClient client = host.Services.GetRequiredService<ICeleriacClient>();
        AsyncResult result = await client.SendTaskAsync("tasks.add", [2L, 3L], ct: Ct);
        return await result.GetAsync<long>(s_wait, Ct);
    }

    [Fact]
    public async Task UseRedis_RealServer_HostedWorkerRunsWhatTheClientSends()
    {
        string url = redis.Server.Url(1 + Random.Shared.Next(15));
        using IHost host = NewHost(b => b.UseRedis(url));
        await host.StartAsync(Ct);

        long sum = await AddAsync(host);
        await host.StopAsync(Ct);

        Assert.Equal(5, sum);
        CeleriacApp app = host.Services.GetRequiredService<CeleriacApp>();
        Assert.Equal(url, app.Options.BrokerUrl);
        Assert.Equal(url, app.EffectiveResultBackendUrl); // the broker's store keeps results
    }

    [Fact]
    public void UseRedis_Parts_EscapedIntoTheUrl()
    {
        using IHost host = NewHost(b => b.UseRedis(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = redis.Server.Port;
            o.Database = 3;
            o.Password = "p@ss:w/rd";
            o.Tls = true;
        }));

        CeleriacApp app = host.Services.GetRequiredService<CeleriacApp>();

        Assert.Equal($"rediss://:p%40ss%3Aw%2Frd@127.0.0.1:{redis.Server.Port}/3", app.Options.BrokerUrl);
        Assert.DoesNotContain("p%40ss", UrlText.Mask(app.Options.BrokerUrl), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UseSqlite_TempFile_HostedWorkerRunsWhatTheClientSends()
    {
        string path = Path.Join(_directory, "tasks.db");
        using IHost host = NewHost(b => b.UseSqlite(path));
        await host.StartAsync(Ct);

        long sum = await AddAsync(host);
        await host.StopAsync(Ct);

        Assert.Equal(5, sum);
        Assert.Equal("sqlite:///" + path, host.Services.GetRequiredService<CeleriacApp>().Options.BrokerUrl);
        Assert.True(File.Exists(path), "the broker's file is where UseSqlite put it");
    }

    [Fact]
    public async Task UseSqlite_NoArgument_TheEmbeddedDefault()
    {
        var services = new ServiceCollection();
        services.AddCeleriac(o => o.BrokerUrl = "memory://first").UseSqlite();
        await using ServiceProvider sp = services.BuildServiceProvider();

        Assert.Equal(CeleriacOptions.DefaultUrl, sp.GetRequiredService<CeleriacApp>().Options.BrokerUrl);
    }

    [Fact]
    public async Task UseBackends_SetTheResultBackendNotTheBroker()
    {
        var services = new ServiceCollection();
        services.AddCeleriac(o => o.BrokerUrl = "memory://b")
            .UseMemcached("cache+memcached://127.0.0.1:11211/")
            .UseS3()
            .UseDatabaseBackend("db+sqlite:///" + Path.Join(_directory, "r.db"));
        await using ServiceProvider sp = services.BuildServiceProvider();

        CeleriacOptions options = sp.GetRequiredService<CeleriacApp>().Options;

        Assert.Equal(("memory://b", "db+sqlite:///" + Path.Join(_directory, "r.db")), (options.BrokerUrl, options.ResultBackend));
    }

    [Theory]
    [InlineData("redis", "amqp://guest:secret@localhost//", "redis://")]
    [InlineData("rabbitmq", "redis://localhost:6379/0", "amqp://")]
    [InlineData("postgresql", "sqlite:///x.db", "postgresql://")]
    [InlineData("sqlite", "sqllite:///x.db", "sqlite://")]
    [InlineData("memcached", "redis://h", "cache+memcached://")]
    [InlineData("azure", "s3://", "azureblockblob://")]
    public void Use_UrlOfAnotherPackage_ArgumentExceptionNamesWhatItTakes(string package, string url, string expected)
    {
        CeleriacBuilder builder = new ServiceCollection().AddCeleriac();

        var error = Assert.Throws<ArgumentException>(() => _ = package switch
        {
            "redis" => builder.UseRedis(url),
            "rabbitmq" => builder.UseRabbitMq(url),
            "postgresql" => builder.UsePostgreSql(url),
            "memcached" => builder.UseMemcached(url),
            "azure" => builder.UseAzureBlob(url),
            _ => builder.UseSqlite(url),
        });

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UseRabbitMq_Parts_DefaultPortsAndVhost()
    {
        var services = new ServiceCollection();
        services.AddCeleriac().UseRabbitMq(o =>
        {
            o.Host = "127.0.0.1";
            o.User = "app";
            o.Password = "s/cret";
            o.VirtualHost = "jobs";
            o.Tls = true;
        });
        await using ServiceProvider sp = services.BuildServiceProvider();

        CeleriacApp app = sp.GetRequiredService<CeleriacApp>();

        Assert.Equal("amqps://app:s%2Fcret@127.0.0.1:5671/jobs", app.Options.BrokerUrl);
        Assert.Equal("rpc://", app.EffectiveResultBackendUrl);
    }

    [Fact]
    public void Configuration_OverridesTheUrlInCode()
    {
        // UseRedis is code: appsettings/environment/command line still win, so one build runs against any broker.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["CELERIAC_BROKER_URL"] = "memory://from-env" });
        builder.Services.AddCeleriac().UseRedis("redis://localhost:6379/0");
        using IHost host = builder.Build();

        Assert.Equal("memory://from-env", host.Services.GetRequiredService<CeleriacApp>().Options.BrokerUrl);
    }
}
