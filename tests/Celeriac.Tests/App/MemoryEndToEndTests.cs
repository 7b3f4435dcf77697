using Celeriac.Worker;

namespace Celeriac.Tests.App;

public sealed class MemoryEndToEndTests
{
    [Fact]
    public async Task DelayAsync_AddOnMemory_ReturnsSum()
    {
        string name = Guid.NewGuid().ToString("N");
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = $"memory://{name}", Concurrency = 2 });
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        using var stop = new CancellationTokenSource();
        var worker = new CeleriacWorker(app);
        Task run = worker.RunAsync(stop.Token);
        await worker.Ready;

        AsyncResult result = await add.DelayAsync(2, 3);
        int sum = await result.GetAsync<int>(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal(5, sum);
        Assert.Equal(TaskStates.Success, result.State);
        stop.Cancel();
        await run;
    }

    [Fact]
    public async Task GetAsync_BadArgument_ThrowsTypeErrorNamingParameter()
    {
        string name = Guid.NewGuid().ToString("N");
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = $"memory://{name}", Concurrency = 2 });
        app.Task("tasks.add", (int x, int y) => x + y);
        using var stop = new CancellationTokenSource();
        var worker = new CeleriacWorker(app);
        Task run = worker.RunAsync(stop.Token);

        AsyncResult result = await app.SendTaskAsync("tasks.add", ["a"], ct: TestContext.Current.CancellationToken);
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<int>(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));

        Assert.Equal("TypeError", error.ExceptionType);
        Assert.Contains("'x'", error.RemoteMessage, StringComparison.Ordinal);
        stop.Cancel();
        await run;
    }
}
