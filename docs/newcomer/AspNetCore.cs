// The newcomer's ASP.NET Core Program.cs: `dotnet new web`, `dotnet add package Celeriac`, this file, `dotnet run`.
// The same program as the README's "In an ASP.NET Core app" block; NewcomerTests builds and runs the README's block
// between <!-- newcomer:aspnet --> markers when there is one, else this file.
using Celeriac;

WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
builder.Services.AddCeleriac()                        // reads the "Celeriac" section: BrokerUrl, ResultBackend, ...
    .AddTask("tasks.add", (int x, int y) => x + y)
    .AddWorker();                                     // leave this out in a web app that only sends
WebApplication app = builder.Build();

// The producer: a minimal API that takes the client from DI.
app.MapPost("/add", async (int x, int y, ICeleriacClient celeriac, CancellationToken ct) =>
{
    AsyncResult sent = await celeriac.SendTaskAsync("tasks.add", [x, y], ct: ct);
    return Results.Accepted($"/tasks/{sent.Id}", new { id = sent.Id });
});
app.MapGet("/tasks/{id}", async (string id, ICeleriacClient celeriac, CancellationToken ct) =>
{
    AsyncResult result = celeriac.AsyncResult(id);
    await result.RefreshAsync(ct);
    return Results.Ok(new { id, state = result.State, value = result.Successful ? result.Info : null });
});
app.Run();
