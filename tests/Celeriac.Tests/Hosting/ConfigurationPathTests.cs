using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Celeriac.Tests.Hosting;

/// <summary>
/// One configuration path: a generic host's appsettings, environment and command line, read by one reader in the
/// documented order after code; bad values fail the host's start naming the setting; the worker's options apart.
/// </summary>
public sealed class ConfigurationPathTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string AppSettings = """
        {
          // comments are allowed, as in a real appsettings.json
          "Celeriac": {
            "Concurrency": 5, "PrefetchMultiplier": 2, "DefaultQueue": "from-file", "AcksLate": true,
            "TaskRoutes": { "x.*": "xq" },
            "Worker": { "Pool": "threads", "Queues": ["a", "b"] }
          }
        }
        """;

    /// <summary>
    /// A host whose configuration is stacked as <c>Host.CreateApplicationBuilder</c> stacks it: appsettings.json, the
    /// environment (keys named as the variables, which is what the environment provider makes of them), the command line.
    /// </summary>
    private static HostApplicationBuilder NewHost(string? json, Dictionary<string, string?>? environment, string[]? args)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        if (json is not null)
        {
            builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        }

        if (environment is not null)
        {
            builder.Configuration.AddInMemoryCollection(environment);
        }

        if (args is not null)
        {
            builder.Configuration.AddCommandLine(args);
        }

        return builder;
    }

    private static void Code(CeleriacOptions o)
    {
        o.BrokerUrl = "memory://" + Guid.NewGuid().ToString("N");
        o.Concurrency = 1;
        o.DefaultQueue = "from-code";
        o.TrackStarted = true;
    }

    [Fact]
    public void Host_CodeThenAppSettingsThenEnvironmentThenCommandLine_LaterWins()
    {
        HostApplicationBuilder builder = NewHost(
            AppSettings,
            new() { ["CELERIAC_CONCURRENCY"] = "7", ["CELERIAC_PREFETCH_MULTIPLIER"] = "3", ["CELERIAC_RESULT_EXPIRES"] = "60" },
            ["--Celeriac:Concurrency=9"]);
        builder.Services.AddCeleriac(Code);
        using IHost host = builder.Build();

        CeleriacOptions options = host.Services.GetRequiredService<CeleriacApp>().Options;

        Assert.Equal(9, options.Concurrency);                         // command line > env > file > code
        Assert.Equal(3, options.PrefetchMultiplier);                  // env > file
        Assert.Equal("from-file", options.DefaultQueue);              // file > code
        Assert.True(options.TrackStarted);                            // code
        Assert.True(options.AcksLate);                                // file
        Assert.Equal("threads", options.Pool);                        // the file's Worker section
        Assert.Equal(["a", "b"], options.Queues);
        Assert.Equal("xq", options.TaskRoutes["x.*"]);
        Assert.Equal(TimeSpan.FromSeconds(60), options.ResultExpires); // env, in seconds as documented
        Assert.Same(options, host.Services.GetRequiredService<IOptions<CeleriacOptions>>().Value);
    }

    [Fact]
    public void Host_LaterSourceWinsWhicheverNameItUses()
    {
        // The file writes the worker's section, the environment the flat variable, the command line the flat key:
        // the later source wins whatever name it uses.
        HostApplicationBuilder builder = NewHost(
            """{"Celeriac": {"Worker": {"Concurrency": 4}, "Concurrency": 3, "DefaultQueue": "file"}}""",
            new() { ["CELERIAC_CONCURRENCY"] = "6" },
            ["--Celeriac:DefaultQueue=cmd"]);
        builder.Services.AddCeleriac(Code);
        using IHost host = builder.Build();

        CeleriacOptions options = host.Services.GetRequiredService<CeleriacApp>().Options;

        Assert.Equal(6, options.Concurrency);
        Assert.Equal("cmd", options.DefaultQueue);
    }

    [Fact]
    public void Host_WorkerSectionBeatsFlatKeyOfTheSameSource()
    {
        HostApplicationBuilder builder = NewHost("""{"Celeriac": {"Concurrency": 3, "Worker": {"Concurrency": 4}}}""", null, null);
        builder.Services.AddCeleriac(Code);
        using IHost host = builder.Build();

        Assert.Equal(4, host.Services.GetRequiredService<CeleriacApp>().Options.Concurrency);
    }

    [Theory]
    [InlineData("CELERIAC_CONCURRENCY", "many", "CELERIAC_CONCURRENCY", "'many'")]
    [InlineData("CELERIAC_ACKS_LATE", "perhaps", "AcksLate", "'perhaps'")]
    [InlineData("Celeriac:Worker:Pool", "gevent2", "pool", "'gevent2'")]
    [InlineData("Celeriac:Worker:Concurrency", "0", "Concurrency", "got 0")]
    [InlineData("Celeriac:Concurency", "2", "unknown setting", "Celeriac:Concurency")]
    [InlineData("Celeriac:Worker:BrokerUrl", "memory://", "unknown setting", "Celeriac:Worker:BrokerUrl")]
    [InlineData("Celeriac:BrokerUrl", "localhost:6379", "broker URL", "localhost:6379")]
    [InlineData("Celeriac:Worker:PrefetchMultiplier", "-1", "PrefetchMultiplier", "got -1")]
    [InlineData("CELERIAC_QUEUE_TYPE", "stream", "QueueType", "'stream'")]
    [InlineData("CELERIAC_VISIBILITY_TIMEOUT", "0", "VisibilityTimeout", "got 00:00:00")]
    public async Task Host_BadSetting_StartFailsWithAMessageNamingIt(string key, string value, string setting, string shown)
    {
        HostApplicationBuilder builder = NewHost(null, new() { [key] = value }, null);
        builder.Services.AddCeleriac(Code).AddWorker();
        using IHost host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));

        Assert.Contains(setting, error.Message, StringComparison.Ordinal);
        Assert.Contains(shown, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CreateAndHost_SameSources_SameSettings()
    {
        // CeleriacApp.Create (and the CLI, which opens its app with it) and a host read through the same reader.
        string[] args = ["--Celeriac:DefaultQueue=cli-q", "--Celeriac:Worker:Concurrency=3", "--Celeriac:BrokerUrl=memory://same"];
        var env = new Dictionary<string, string?> { ["CELERIAC_PREFETCH_MULTIPLIER"] = "1", ["CELERIAC_HOSTNAME"] = "n1@%h" };
        var direct = new CeleriacOptions();
        CeleriacSettings.Bind(direct, CeleriacSettings.BuildConfiguration(appSettingsPath: null, args, env.GetValueOrDefault));
        HostApplicationBuilder builder = NewHost(null, env, args);
        builder.Services.AddCeleriac();
        using IHost host = builder.Build();
        CeleriacOptions hosted = host.Services.GetRequiredService<CeleriacApp>().Options;

        Assert.Equal(("memory://same", "cli-q", 3, 1, "n1@%h"), (direct.BrokerUrl, direct.DefaultQueue, direct.Concurrency, direct.PrefetchMultiplier, direct.NodeName));
        Assert.Equal((direct.BrokerUrl, direct.DefaultQueue, direct.Concurrency, direct.PrefetchMultiplier, direct.NodeName),
            (hosted.BrokerUrl, hosted.DefaultQueue, hosted.Concurrency, hosted.PrefetchMultiplier, hosted.NodeName));
    }

    [Fact]
    public async Task Create_CommandLine_ReadAfterCode()
    {
        await using CeleriacApp app = CeleriacApp.Create(["--Celeriac:BrokerUrl=memory://args", "--Celeriac:Worker:Pool=solo"], o => o.Pool = "threads");

        Assert.Equal("memory://args", app.Options.BrokerUrl);
        Assert.Equal("solo", app.Options.Pool);
    }

    [Fact]
    public void Variables_EveryWorkerSettingIsAPropertyOfTheWorkerOptions()
    {
        string[] properties = [.. typeof(CeleriacWorkerOptions).GetProperties().Select(p => p.Name)];

        Assert.All(CeleriacSettings.WorkerSettings, s => Assert.Contains(s, properties));
        Assert.Equal(properties.Order(), CeleriacSettings.WorkerSettings.Order());
    }

    [Fact]
    public void AddWorker_Options_AfterAppCodeBeforeConfiguration()
    {
        HostApplicationBuilder builder = NewHost(null, new() { ["Celeriac:Worker:PrefetchMultiplier"] = "1", ["CELERIAC_SOFT_SHUTDOWN_TIMEOUT"] = "2.5" }, null);
        builder.Services.AddCeleriac(o =>
        {
            Code(o);
            o.Concurrency = 2;
            o.PrefetchMultiplier = 8;
            o.TaskTimeLimit = TimeSpan.FromMinutes(1);
        }).AddWorker(w =>
        {
            w.Concurrency = 5;
            w.Queues.Add("q1");
        });
        using IHost host = builder.Build();

        CeleriacOptions options = host.Services.GetRequiredService<CeleriacApp>().Options;
        CeleriacWorkerOptions worker = host.Services.GetRequiredService<IOptions<CeleriacWorkerOptions>>().Value;

        Assert.Equal(5, options.Concurrency);                      // AddWorker > AddCeleriac
        Assert.Equal(["q1"], options.Queues);
        Assert.Equal(1, options.PrefetchMultiplier);               // configuration > code
        Assert.Equal(TimeSpan.FromMinutes(1), options.TaskTimeLimit); // AddWorker left it: the app's value stays
        Assert.Equal(TimeSpan.FromSeconds(2.5), options.SoftShutdownTimeout);
        Assert.Equal((5, 1, TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(2.5)), (worker.Concurrency, worker.PrefetchMultiplier, worker.TaskTimeLimit, worker.SoftShutdownTimeout));
        Assert.Equal(["q1"], worker.Queues);
    }

    [Fact]
    public async Task RepeatCalls_OneAppOneWorkerOneBeatOneProvider()
    {
        var services = new ServiceCollection();
        CeleriacBuilder first = services.AddCeleriac(Code);
        CeleriacBuilder second = services.AddCeleriac(o => o.DefaultQueue = "second");
        first.AddWorker().AddWorker(w => w.Concurrency = 3).AddBeat().AddBeat();
        first.UseSqlite().UseSqlite(); // the provider once; the last URL wins as in any repeated setting
        int descriptors = services.Count;
        services.AddCeleriac();
        second.AddWorker().AddBeat();

        Assert.Same(first, second);
        Assert.Equal(descriptors, services.Count);
        await using ServiceProvider sp = services.BuildServiceProvider();
        IHostedService[] hosted = [.. sp.GetServices<IHostedService>()];
        Assert.Equal(2, hosted.Length); // one worker, one beat
        Assert.Equal(2, hosted.Select(h => h.GetType()).Distinct().Count());
        CeleriacApp app = sp.GetRequiredService<CeleriacApp>();
        Assert.Equal(("second", 3), (app.Options.DefaultQueue, app.Options.Concurrency));
    }

    [Fact]
    public void AddBeat_Options_CodeThenConfiguration()
    {
        HostApplicationBuilder builder = NewHost(null, new() { ["CELERIAC_BEAT_LEASE_TIME"] = "9" }, null);
        builder.Services.AddCeleriac(Code).AddBeat(configure: b =>
        {
            b.LeaseTime = TimeSpan.FromSeconds(7);
            b.MaxInterval = TimeSpan.FromSeconds(1);
            b.Timezone = "Europe/Paris";
        });
        using IHost host = builder.Build();

        CeleriacOptions options = host.Services.GetRequiredService<CeleriacApp>().Options;

        Assert.Equal(TimeSpan.FromSeconds(9), options.BeatLeaseTime);
        Assert.Equal(TimeSpan.FromSeconds(1), options.BeatMaxInterval);
        Assert.Equal("Europe/Paris", options.Timezone);
    }
}
