using Celeriac.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac.Tests.Hosting;

/// <summary>A provider registered explicitly (what <c>UseRedis(...)</c> does) is used without looking its assembly up by name.</summary>
public sealed class ExplicitProviderTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A scheme whose package, looked up by name, does not exist: only the explicit registration can serve it.</summary>
    private sealed class AbsentPackageProvider : ICeleriacProvider
    {
        public const string Scheme = "celeriac-explicit";

        public void Register(ProviderRegistry registry)
        {
            registry.AddTransport(Scheme, static o => new MemoryTransport(o.Url), defaultResultBackend: "memory://explicit-results");
        }
    }

    [Fact]
    public async Task AddProvider_SchemeOfAnAbsentPackage_ServedWithoutALookUp()
    {
        ProviderRegistry.s_knownAssemblies.TryAdd(AbsentPackageProvider.Scheme, "Celeriac.Explicit.Absent");
        var services = new ServiceCollection();
        services.AddCeleriac(o => o.BrokerUrl = AbsentPackageProvider.Scheme + "://q")
            .AddProvider(new AbsentPackageProvider())
            .AddProvider(new AbsentPackageProvider());
        await using ServiceProvider sp = services.BuildServiceProvider();
        CeleriacApp app = sp.GetRequiredService<CeleriacApp>();
        app.Task("explicit.echo", (int x) => x);

        AsyncResult sent = await app.SendTaskAsync("explicit.echo", [1], ct: Ct);

        Assert.IsType<MemoryTransport>(app.Transport);
        Assert.Equal("memory://explicit-results", app.EffectiveResultBackendUrl);
        Assert.Equal(1, await app.Transport.GetQueueLengthAsync(app.Options.DefaultQueue, Ct));
        Assert.False(string.IsNullOrEmpty(sent.Id));
    }

    [Fact]
    public async Task WithoutTheExplicitProvider_TheSameSchemeNamesTheMissingPackage()
    {
        ProviderRegistry.s_knownAssemblies.TryAdd(AbsentPackageProvider.Scheme, "Celeriac.Explicit.Absent");
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = AbsentPackageProvider.Scheme + "://q" });

        var error = Assert.Throws<CeleriacConfigurationException>(() => app.Transport);

        Assert.Contains("Celeriac.Explicit.Absent", error.Message, StringComparison.Ordinal);
    }
}
