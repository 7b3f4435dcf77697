using Celeriac;
using Celeriac.Cli;
using Celeriac.SuiteWorker;

// The tasks of Celery's integration suite on a Celeriac worker. The arguments are the celeriac CLI's, e.g.
// `worker -b redis://127.0.0.1:PORT/0 --result-backend redis://127.0.0.1:PORT/0 -P async -c 4 -n celery@HOST`;
// the tasks that talk to Redis themselves use REDIS_HOST and REDIS_PORT, as the suite's conftest.py does.
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
    app.AddTasksFromAssembly(typeof(IntegrationTasks).Assembly);
    return await CeleriacCli.RunAsync(args, app);
}
