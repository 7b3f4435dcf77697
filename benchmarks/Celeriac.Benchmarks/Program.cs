using Celeriac;
using Celeriac.Benchmarks;
using Celeriac.Cli;

// `worker ...`: this program is the celeriac CLI with the benchmark's tasks, so the benchmark can run itself as worker
// processes (and a prefork worker's children: the CLI's worker command serves the parent when PoolChild.IsCurrentProcess).
if (args.Length > 0 && args[0] == "worker")
{
    await using var app = new CeleriacApp(new CeleriacOptions());
    BenchTasks.Register(app);
    return await CeleriacCli.RunAsync(args, app);
}

// `invokers`: BenchmarkDotNet, bind + invoke of tasks.add by the reflection invoker against the generated one.
if (args.Length > 0 && args[0] == "invokers")
{
    InvokerBenchmarks.Run(args[1..]);
    return 0;
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine("Error: " + ex.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

if (options.Help)
{
    Console.Error.WriteLine(BenchOptions.Usage);
    return 0;
}

Cleanup.InstallSignalHandlers();
try
{
    return await Bench.RunAsync(options);
}
finally
{
    Cleanup.UndoAll();
}
