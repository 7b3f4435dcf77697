// The newcomer's ASP.NET Core Program.cs: `dotnet new web`, `dotnet add package Celeriac`, this file, `dotnet run`.
// A producer in a minimal API (the client comes from DI into the handler) and the worker as a hosted service in the
// same app, on the embedded default (sqlite:///celeriac.db). In production the worker usually runs in its own process:
// drop .AddWorker() here and run it in a worker service (see the generic host example) or with `celeriac worker`.
// tests/Celeriac.IntegrationTests/Packaging/NewcomerTests.cs builds and runs it from the packed packages: it reads the
// README's block between <!-- newcomer:aspnet --> markers when there is one, else this file.
using Celeriac;

WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
builder.Services.AddCeleriac()
    .AddTasksFromAssemblyOf<Program>()
    .AddWorker();
WebApplication app = builder.Build();

// POST /add?x=2&y=3 sends tasks.add and answers 202 with the task's id at once.
app.MapPost("/add", async (long x, long y, ICeleriacClient celeriac, CancellationToken ct) =>
{
    AsyncResult<long> sent = await celeriac.SendTaskAsync<long>("tasks.add", [x, y], ct: ct);
    return Results.Accepted($"/results/{sent.Id}", new { id = sent.Id });
});

// GET /results/{id} waits (up to 10 s) for the task's result.
app.MapGet("/results/{id}", async (string id, ICeleriacClient celeriac, CancellationToken ct) =>
    Results.Ok(new { id, result = await celeriac.AsyncResult(id).GetAsync(TimeSpan.FromSeconds(10), ct) }));

app.Run();

public static class Tasks
{
    [CeleriacTask("tasks.add")]
    public static long Add(long x, long y) => x + y;
}
