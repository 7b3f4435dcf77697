using System.Collections.Concurrent;
using Celeriac.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac.Tests.App;

/// <summary>Tasks found by attribute and run with their dependencies from a real container, one scope per run.</summary>
public sealed class DependencyInjectionTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ServiceProvider BuildProvider()
    {
        var services = new ServiceCollection();
        services.AddSingleton<ScopeTracker>();
        services.AddScoped<ScopedThing>();
        services.AddSingleton<IGreeter, Greeter>();
        services.AddCeleriac(o =>
        {
            o.BrokerUrl = "memory://" + Guid.NewGuid().ToString("N");
            o.Concurrency = 2;
        }).AddTasksFromAssemblyOf<DependencyInjectionTests>();
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true });
    }

    [Fact]
    public async Task AddTasksFromAssemblyOf_AttributeClassAndMethod_AreRegistered()
    {
        await using ServiceProvider provider = BuildProvider();

        CeleriacApp app = provider.GetRequiredService<CeleriacApp>();

        Assert.True(app.Tasks.TryGet("di.scoped_counter", out CeleriacTask? classTask));
        Assert.True(app.Tasks.TryGet("di.greet", out _));
        Assert.Equal("di-queue", classTask.Options.Queue);
        Assert.Same(app, provider.GetRequiredService<CeleriacApp>());
    }

    [Fact]
    public async Task Run_ClassTaskWithScopedService_OneInstancePerRunDisposedAfterEach()
    {
        await using ServiceProvider provider = BuildProvider();
        CeleriacApp app = provider.GetRequiredService<CeleriacApp>();
        app.Options.Queues.Add("di-queue");
        await using RunningWorker w = await RunningWorker.StartAsync(app);
        ScopeTracker tracker = provider.GetRequiredService<ScopeTracker>();

        AsyncResult first = await app.SendTaskAsync("di.scoped_counter", [1], ct: Ct);
        int a = await first.GetAsync<int>(s_wait, Ct);
        AsyncResult second = await app.SendTaskAsync("di.scoped_counter", [1], ct: Ct);
        int b = await second.GetAsync<int>(s_wait, Ct);
        Assert.True(await Poll.UntilAsync(() => tracker.Disposed.Count == 2, s_wait), "both scopes disposed");

        Assert.NotEqual(a, b); // each run saw its own ScopedThing
        Assert.Equal(2, tracker.Created.Count);
        Assert.Equal(tracker.Created.Order(), tracker.Disposed.Order());
    }

    [Fact]
    public async Task Run_MethodTaskWithInterfaceParameter_ResolvedFromContainer()
    {
        await using ServiceProvider provider = BuildProvider();
        CeleriacApp app = provider.GetRequiredService<CeleriacApp>();
        await using RunningWorker w = await RunningWorker.StartAsync(app);

        AsyncResult result = await app.SendTaskAsync("di.greet", ["ann"], ct: Ct);

        Assert.Equal("hi ann", await result.GetAsync<string>(s_wait, Ct));
    }
}

public sealed class ScopeTracker
{
    private int _next;

    public ConcurrentBag<int> Created { get; } = [];

    public ConcurrentBag<int> Disposed { get; } = [];

    public int Next() => Interlocked.Increment(ref _next);
}

public sealed class ScopedThing : IDisposable
{
    private readonly ScopeTracker _tracker;

    public ScopedThing(ScopeTracker tracker)
    {
        _tracker = tracker;
        Number = tracker.Next();
        tracker.Created.Add(Number);
    }

    public int Number { get; }

    public void Dispose() => _tracker.Disposed.Add(Number);
}

public interface IGreeter
{
    string Greet(string name);
}

public sealed class Greeter : IGreeter
{
    public string Greet(string name) => "hi " + name;
}

/// <summary>A task class: resolved per run, with a scoped dependency.</summary>
[CeleriacTask("di.scoped_counter", Queue = "di-queue")]
public sealed class ScopedCounterTask(ScopedThing thing)
{
    public int Run(int offset) => thing.Number * 1000 + offset;
}

/// <summary>A task method whose interface parameter comes from the container.</summary>
public static class GreetingTasks
{
    [CeleriacTask("di.greet")]
    public static string Greet(IGreeter greeter, string name) => greeter.Greet(name);
}
