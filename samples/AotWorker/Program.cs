using System.Globalization;
using System.Runtime.InteropServices;
using AotWorker;
using Celeriac;
using Celeriac.Redis;
using Celeriac.Worker;

// With no arguments: one process, the app, a worker on the in-process memory broker, and a producer that calls
// tasks.add(2, 3) (the smoke test of scripts/aot-sample.sh).
// With --broker: a worker of its own on that broker until SIGTERM or Ctrl+C, as deployed (the Redis benchmark's
// NativeAOT worker): AotWorker --broker redis://127.0.0.1:6379/0 [--result-backend URL] [-c N] [-n NAME]
if (args.Length > 0)
{
    return await ServeAsync(args);
}

await using (var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://aot", ResultBackend = "memory://aot" }))
{
    CeleriacTasks.AddTo(app);
    var worker = new CeleriacWorker(app);
    using var stop = new CancellationTokenSource();
    Task run = worker.RunAsync(stop.Token);
    await worker.Ready.WaitAsync(TimeSpan.FromSeconds(10));

    var tasks = new CeleriacTasks(app);
    AsyncResult<long> sum = await tasks.Add.DelayAsync(2, 3);
    Console.WriteLine(await sum.GetAsync(TimeSpan.FromSeconds(10)));

    await stop.CancelAsync();
    await run.WaitAsync(TimeSpan.FromSeconds(10));
}

return 0;

static async Task<int> ServeAsync(string[] args)
{
    var options = new CeleriacOptions();
    string? broker = null;
    for (int i = 0; i < args.Length; i++)
    {
        string? value = i + 1 < args.Length ? args[i + 1] : null;
        switch (args[i])
        {
            case "--broker" when value is not null:
                broker = value;
                break;
            case "--result-backend" when value is not null:
                options.ResultBackend = value;
                break;
            case "-c" or "--concurrency" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int c) && c > 0:
                options.Concurrency = c;
                break;
            case "-n" or "--hostname" when value is not null:
                options.NodeName = value;
                break;
            default:
                Console.Error.WriteLine($"AotWorker: unknown or incomplete option '{args[i]}'. Usage: AotWorker --broker URL [--result-backend URL] [-c N] [-n NAME]");
                return 2;
        }

        i++;
    }

    if (broker is null)
    {
        Console.Error.WriteLine("AotWorker: --broker is required to serve a broker (without arguments it runs its self-test).");
        return 2;
    }

    options.BrokerUrl = broker;

    await using var app = new CeleriacApp(options);

    // Named explicitly: a NativeAOT app cannot load a provider's assembly by name from its URL scheme.
    app.Providers.Add(new RedisProvider());
    CeleriacTasks.AddTo(app);
    var worker = new CeleriacWorker(app);
    using var stop = new CancellationTokenSource();
    using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
    using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
    Task run = worker.RunAsync(stop.Token);
    await Task.WhenAny(worker.Ready, run);
    if (run.IsCompleted)
    {
        // It could not start (a bad URL, a broker it cannot reach): the reason, not a stack trace.
        Console.Error.WriteLine($"AotWorker: {run.Exception?.InnerException?.Message ?? "the worker stopped before it was ready"}");
        return 1;
    }

    // The line a supervisor (and the benchmark) waits for, as the celeriac CLI prints it.
    Console.WriteLine($"{worker.NodeName} ready.");
    await run;
    return 0;

    void Stop(PosixSignalContext context)
    {
        context.Cancel = true; // A warm stop: the worker finishes what it runs and gives back what it holds.
        stop.Cancel();
    }
}
