using AotWorker;
using Celeriac;
using Celeriac.Worker;

// One process: the app, a worker on the in-process memory broker, and a producer that calls tasks.add(2, 3).
await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://aot", ResultBackend = "memory://aot" });
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
