// The newcomer's Program.cs: `dotnet new console`, `dotnet add package Celeriac`, this file, `dotnet run`.
// A worker hosted in the generic host and a producer in the same process, on the embedded default
// (sqlite:///celeriac.db in the working directory: nothing to install or start).
// tests/Celeriac.IntegrationTests/Packaging/NewcomerTests.cs builds and runs it from the packed packages: it reads the
// README's block between <!-- newcomer:program --> markers when there is one, else this file.
using Celeriac;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

HostApplicationBuilder builder = Host.CreateApplicationBuilder(args);
builder.Services.AddCeleriac()          // options: code, then appsettings.json "Celeriac", then CELERIAC_* variables
    .AddTasksFromAssemblyOf<Program>()  // every [CeleriacTask] method in this assembly
    .AddWorker();                       // the worker, as a hosted service
using IHost host = builder.Build();
await host.StartAsync();

// Producers take the client from DI (constructor injection in a controller, a minimal API or a service).
ICeleriacClient client = host.Services.GetRequiredService<ICeleriacClient>();

AsyncResult<long> sum = await client.SendTaskAsync<long>("tasks.add", [2, 3]);
Console.WriteLine($"tasks.add(2, 3) = {await sum.GetAsync(TimeSpan.FromSeconds(30))}");

AsyncResult<string> flaky = await client.SendTaskAsync<string>("tasks.flaky", ["hello"]);
Console.WriteLine($"tasks.flaky('hello') = {await flaky.GetAsync(TimeSpan.FromSeconds(30))}");

AsyncResult failing = await client.SendTaskAsync("tasks.fail", ["boom"]);
try
{
    await failing.GetAsync(TimeSpan.FromSeconds(30));
}
catch (TaskFailedException ex)
{
    Console.WriteLine($"tasks.fail('boom') failed: {ex.Message}");
}

await host.StopAsync();

public static class Tasks
{
    [CeleriacTask("tasks.add")]
    public static long Add(long x, long y) => x + y;

    // Fails on its first two attempts; each failure is retried half a second later (Celery's autoretry_for).
    [CeleriacTask("tasks.flaky", AutoRetryFor = [typeof(TimeoutException)], MaxRetries = 3, DefaultRetryDelaySeconds = 0.5)]
    public static string Flaky(string text, TaskContext context) =>
        context.Retries < 2
            ? throw new TimeoutException($"attempt {context.Retries + 1}: the service did not answer")
            : $"{text} after {context.Retries} retries";

    [CeleriacTask("tasks.fail")]
    public static void Fail(string message) => throw new InvalidOperationException(message);
}
