// The newcomer's Program.cs: `dotnet new console`, `dotnet add package Celeriac`, this file, `dotnet run`.
// The same program as the README's block between <!-- newcomer:program --> markers, which
// tests/Celeriac.IntegrationTests/Packaging/NewcomerTests.cs builds and runs from the packed packages (this file only
// when the README has no such block).
using Celeriac;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

HostApplicationBuilder builder = Host.CreateApplicationBuilder(args);
builder.Services.AddCeleriac()                  // the embedded default: sqlite:///celeriac.db, no server
    .AddTasksFromAssemblyOf<Program>()          // every [CeleriacTask] below
    .AddWorker();                               // a worker, started and warm-stopped with the host
builder.Services.AddHostedService<Producer>();  // a producer: anything that takes ICeleriacClient from DI
await builder.Build().RunAsync();

static class MyTasks
{
    [CeleriacTask("tasks.add")]
    public static int Add(int x, int y) => x + y;

    [CeleriacTask("tasks.fail")]
    public static int Fail(string why) => throw new InvalidOperationException(why);

    // Raises twice, then succeeds: Celery's autoretry_for, half a second apart.
    [CeleriacTask("tasks.flaky", AutoRetryFor = [typeof(TimeoutException)], MaxRetries = 3, DefaultRetryDelaySeconds = 0.5)]
    public static int Flaky(TaskContext context) =>
        context.Retries < 2 ? throw new TimeoutException("not yet") : context.Retries + 1;
}

sealed class Producer(ICeleriacClient client, IHostApplicationLifetime lifetime) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        TimeSpan wait = TimeSpan.FromSeconds(30);
        AsyncResult sum = await client.SendTaskAsync("tasks.add", [2, 3], ct: ct);
        Console.WriteLine($"tasks.add(2, 3) = {await sum.GetAsync<int>(wait, ct)}");

        AsyncResult failed = await client.SendTaskAsync("tasks.fail", ["boom"], ct: ct);
        try
        {
            await failed.GetAsync<int>(wait, ct);
        }
        catch (TaskFailedException ex)
        {
            Console.WriteLine($"tasks.fail failed: {ex.Message}");
        }

        AsyncResult flaky = await client.SendTaskAsync("tasks.flaky", ct: ct);
        Console.WriteLine($"tasks.flaky succeeded on attempt {await flaky.GetAsync<int>(wait, ct)}");
        lifetime.StopApplication();
    }
}
