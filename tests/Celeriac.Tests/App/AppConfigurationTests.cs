using Celeriac.Results;
using Celeriac.Tests.Support;
using Celeriac.Transport;

namespace Celeriac.Tests.App;

/// <summary>Routing, settings precedence and URL errors.</summary>
public sealed class AppConfigurationTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-settings-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static CeleriacApp RoutedApp()
    {
        CeleriacApp app = RunningWorker.NewApp(o =>
        {
            o.DefaultQueue = "default";
            o.TaskRoutes["reports.*"] = "pattern"; // added first: an exact route must still win
            o.TaskRoutes["reports.daily"] = "exact";
            o.TaskRoutes["reports.own"] = "exact-own";
            o.TaskRoutes["*.urgent.v?"] = "glob";
        });
        app.Task("reports.own", () => 1, new TaskOptions { Queue = "own" });
        return app;
    }

    [Theory]
    [InlineData("reports.own", "explicit", "explicit")]
    [InlineData("reports.own", null, "own")]
    [InlineData("reports.daily", null, "exact")]
    [InlineData("reports.weekly", null, "pattern")]
    [InlineData("billing.charge", null, "default")]
    [InlineData("billing.urgent.v2", null, "glob")]
    [InlineData("billing.urgent.v10", null, "default")]
    public async Task Route_Precedence_ExplicitThenOwnThenExactThenPatternThenDefault(string task, string? explicitQueue, string expected)
    {
        await using CeleriacApp app = RoutedApp();

        Assert.Equal(expected, app.Route(task, explicitQueue));
    }

    [Fact]
    public async Task SendTaskAsync_NameNotRegisteredHere_PublishedToItsRoute()
    {
        await using CeleriacApp app = RoutedApp();

        AsyncResult result = await app.SendTaskAsync("proj.tasks.mul", [2, 3], ct: TestContext.Current.CancellationToken);
        await app.SendTaskAsync("reports.weekly", ct: TestContext.Current.CancellationToken);

        Assert.False(string.IsNullOrEmpty(result.Id));
        Assert.Equal(1, await app.Transport.GetQueueLengthAsync("default", TestContext.Current.CancellationToken));
        Assert.Equal(1, await app.Transport.GetQueueLengthAsync("pattern", TestContext.Current.CancellationToken));
        Assert.Equal(TaskStates.Pending, await result.GetStateAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public void Apply_CodeThenFileThenEnvironment_LaterWins()
    {
        string path = Path.Join(_directory, "appsettings.json");
        File.WriteAllText(path, """
            {
              // comments are allowed
              "Celeriac": { "Concurrency": 5, "DefaultQueue": "from-file", "AcksLate": true, "Queues": ["a", "b"],
                            "TaskRoutes": { "x.*": "xq" } },
            }
            """);
        var env = new Dictionary<string, string> { ["CELERIAC_CONCURRENCY"] = "7", ["CELERIAC_RESULT_EXPIRES"] = "60" };
        var options = new CeleriacOptions { BrokerUrl = "memory://code", Concurrency = 3, DefaultQueue = "from-code", TrackStarted = true };

        CeleriacSettings.Apply(options, path, env.GetValueOrDefault);

        Assert.Equal(7, options.Concurrency);                        // env > file > code
        Assert.Equal("from-file", options.DefaultQueue);              // file > code
        Assert.Equal("memory://code", options.BrokerUrl);             // code > default
        Assert.True(options.TrackStarted);                            // code
        Assert.True(options.AcksLate);                                // file
        Assert.Equal(4, options.PrefetchMultiplier);                  // default
        Assert.Equal(TimeSpan.FromSeconds(60), options.ResultExpires); // env
        Assert.Equal(["a", "b"], options.Queues);
        Assert.Equal("xq", options.TaskRoutes["x.*"]);
    }

    [Fact]
    public void Apply_NoFile_DefaultsAndEnvironmentOnly()
    {
        var options = new CeleriacOptions();

        CeleriacSettings.Apply(options, Path.Join(_directory, "missing.json"), name => name == "CELERIAC_BROKER_URL" ? "memory://env" : null);

        Assert.Equal("memory://env", options.BrokerUrl);
        Assert.Equal("celery", options.DefaultQueue);
    }

    [Theory]
    [InlineData("CELERIAC_CONCURRENCY", "many", "Concurrency")]
    [InlineData("CELERIAC_ACKS_LATE", "perhaps", "AcksLate")]
    [InlineData("CELERIAC_VISIBILITY_TIMEOUT", "-5", "VisibilityTimeout")]
    [InlineData("CELERIAC_PREFETCH_MULTIPLIER", "1.5", "PrefetchMultiplier")]
    public void Apply_BadEnvironmentValue_ExceptionNamesTheSetting(string variable, string value, string setting)
    {
        var options = new CeleriacOptions();

        var error = Assert.Throws<CeleriacConfigurationException>(() => CeleriacSettings.Apply(options, null, name => name == variable ? value : null));

        Assert.Contains(setting, error.Message, StringComparison.Ordinal);
        Assert.Contains(value, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "Celeriac": { "Concurency": 2 } }""", "Concurency")]
    [InlineData("""{ "Celeriac": { "Concurrency": "lots" } }""", "Concurrency")]
    [InlineData("""{ "Celeriac": """, "not valid JSON")]
    public void Apply_BadFile_ExceptionNamesTheProblem(string json, string expected)
    {
        string path = Path.Join(_directory, "appsettings.json");
        File.WriteAllText(path, json);

        var error = Assert.Throws<CeleriacConfigurationException>(() => CeleriacSettings.Apply(new CeleriacOptions(), path, _ => null));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, nameof(CeleriacOptions.Concurrency))]
    [InlineData(-1, "prefetch multiplier")]
    public void Validate_BadValue_ExceptionNamesIt(int value, string expected)
    {
        var options = new CeleriacOptions { BrokerUrl = "memory://", Concurrency = value == 0 ? 0 : 1, PrefetchMultiplier = value == -1 ? -1 : 4 };

        var error = Assert.Throws<CeleriacConfigurationException>(options.Validate);

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("localhost:6379")]
    [InlineData("not a url")]
    public void UrlTextParse_NotAUrl_ExceptionNamesWhat(string url)
    {
        var error = Assert.Throws<CeleriacConfigurationException>(() => UrlText.Parse(url, "broker"));

        Assert.Contains("broker URL", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CreateTransport_UnknownScheme_ListsKnownSchemesAndMasksPassword()
    {
        var registry = new ProviderRegistry();

        var error = Assert.Throws<CeleriacConfigurationException>(() =>
            registry.CreateTransport(new TransportOptions { Url = new Uri("kafka://user:s3cret@host:9092") }));

        Assert.Contains("'kafka://'", error.Message, StringComparison.Ordinal);
        Assert.Contains("memory://", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("celeriac-absent://guest:guest@localhost/celery", "Celeriac.Absent")]
    public async Task Transport_SchemeOfAPackageNotReferenced_ExceptionNamesThePackage(string url, string package)
    {
        // Every package that exists is referenced by this test project, so a scheme of one that is not is made up.
        ProviderRegistry.s_knownAssemblies.TryAdd("celeriac-absent", package);

        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = url });

        var error = Assert.Throws<CeleriacConfigurationException>(() => app.Transport);

        Assert.Contains(package, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("guest:guest", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CreateResultBackend_UnknownScheme_Throws()
    {
        var error = Assert.Throws<CeleriacConfigurationException>(() =>
            new ProviderRegistry().CreateResultBackend(new ResultBackendOptions { Url = new Uri("mongodb://h/db") }));

        Assert.Contains("result backend", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("redis://user:secret@host:6379/0", "redis://user:**@host:6379/0")]
    [InlineData("amqp://guest:guest@localhost:5672//", "amqp://guest:**@localhost:5672//")]
    [InlineData("redis://host:6379/0", "redis://host:6379/0")]
    [InlineData("redis://:onlypass@host/0", "redis://:**@host/0")]
    public void Mask_UrlWithPassword_PasswordHidden(string url, string expected)
    {
        Assert.Equal(expected, UrlText.Mask(url));
    }

    [Fact]
    public async Task EffectiveResultBackendUrl_MemoryBroker_SameStore()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://x" });

        Assert.Equal("memory://x", app.EffectiveResultBackendUrl);
    }

    [Fact]
    public async Task EffectiveResultBackendUrl_AmqpBroker_RpcFromTheRabbitMqProvider()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "amqp://guest:guest@localhost:5672//" });

        Assert.Equal("rpc://", app.EffectiveResultBackendUrl);
        Assert.Equal("rpc://", app.Providers.DefaultResultBackend("amqps"));
        Assert.Null(app.Providers.DefaultResultBackend("redis"));
    }

    [Fact]
    public async Task EffectiveResultBackendUrl_ProviderNamesADefault_ThatDefaultUnlessConfigured()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "custom://q" });
        app.Providers.AddTransport("custom", o => new MemoryTransport(o.Url), defaultResultBackend: "memory://results");
        app.Providers.AddResultBackend("custom", o => new MemoryResultBackend(o));
        await using var configured = new CeleriacApp(new CeleriacOptions { BrokerUrl = "custom://q", ResultBackend = "file:///tmp/r" });
        configured.Providers.AddTransport("custom", o => new MemoryTransport(o.Url), defaultResultBackend: "memory://results");

        Assert.Equal("memory://results", app.EffectiveResultBackendUrl);
        Assert.Equal("file:///tmp/r", configured.EffectiveResultBackendUrl);
    }

    [Fact]
    public async Task EffectiveResultBackendUrl_DefaultNamesTheBroker_TheBrokerUrlTakesItsPlace()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "custom://user@host:5/db" });
        app.Providers.AddTransport("custom", o => new MemoryTransport(o.Url), defaultResultBackend: "db+{broker}");

        Assert.Equal("db+custom://user@host:5/db", app.EffectiveResultBackendUrl);
    }

    [Fact]
    public async Task EffectiveResultBackendUrl_TransportWithoutBackendOrDefault_Disabled()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "custom://q" });
        app.Providers.AddTransport("custom", o => new MemoryTransport(o.Url));

        Assert.Equal("disabled://", app.EffectiveResultBackendUrl);
    }
}
