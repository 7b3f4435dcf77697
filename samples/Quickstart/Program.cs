using Celeriac;
using Celeriac.Cli;
using Quickstart;

// One app for both roles: its options come from code, appsettings.json, CELERIAC_* and (as a CLI) the flags.
CeleriacApp app;
try
{
    app = CeleriacApp.Create();
}
catch (CeleriacConfigurationException ex)
{
    Console.Error.WriteLine("Error: " + ex.Message);
    return ExitCodes.Usage;
}

await using (app)
{
    app.AddTasksFromAssembly(typeof(Tasks).Assembly);

    // A periodic entry for `dotnet run -- beat` (or `-- worker -B`): tasks.add(2, 2) every 10 seconds.
    app.Beat.Add("add-every-10s", "tasks.add", TimeSpan.FromSeconds(10), 2, 2);

    // With arguments this program is the celeriac CLI with these tasks: `dotnet run -- worker -c 4`,
    // `dotnet run -- call tasks.add --args '[2,3]'`, `dotnet run -- result ID --wait 10`, `dotnet run -- beat`.
    if (args.Length > 0)
    {
        return await CeleriacCli.RunAsync(args, app);
    }

    // Without arguments: a worker and a producer in this one process.
    return await Demo.RunAsync(app, count: 1000);
}
