using Celeriac.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac.Tests.Testing;

/// <summary>AddCeleriacTestHarness: a DI user's app runs under the harness, whichever order the calls come in.</summary>
public sealed class TestHarnessDependencyInjectionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ClientFromDI_SendsIntoTheHarness(bool harnessFirst)
    {
        var services = new ServiceCollection();
        if (harnessFirst)
        {
            services.AddCeleriacTestHarness();
        }

        services.AddCeleriac(o => o.BrokerUrl = "nowhere://broker").AddTask("tasks.add", (int x, int y) => x + y);
        services.AddCeleriacTestHarness();
        services.AddCeleriacTestHarness(); // a repeat does nothing
        await using ServiceProvider provider = services.BuildServiceProvider();

        ICeleriacClient client = provider.GetRequiredService<ICeleriacClient>();
        AsyncResult result = await client.SendTaskAsync("tasks.add", [20, 22], ct: Ct);
        CeleriacTestHarness harness = provider.GetRequiredService<CeleriacTestHarness>();

        Assert.True(await harness.Succeeded.Any("tasks.add", t => t.Result<int>() == 42, Ct));
        Assert.Equal(42, await result.GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
        Assert.Same(harness.Time, provider.GetRequiredService<TimeProvider>());
        Assert.Single(provider.GetServices<CeleriacTestHarness>());
    }
}
