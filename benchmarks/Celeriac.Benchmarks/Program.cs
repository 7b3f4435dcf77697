using System.Diagnostics;
using Celeriac;
using Celeriac.Worker;

int count = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 200_000;
bool results = args.Length <= 1 || args[1] != "noresults";
string name = Guid.NewGuid().ToString("N");
await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = $"memory://{name}", Concurrency = 2 });
var add = app.Task("tasks.add", (int x, int y) => x + y, new TaskOptions { IgnoreResult = !results });
var sw = Stopwatch.StartNew();
for (int i = 0; i < count; i++)
{
    await add.DelayAsync(i, i);
}
Console.WriteLine($"publish {count / sw.Elapsed.TotalSeconds:F0}/s");
var worker = new CeleriacWorker(app);
using var stop = new CancellationTokenSource();
sw.Restart();
long alloc0 = GC.GetTotalAllocatedBytes(true); int gc0 = GC.CollectionCount(0);
var run = worker.RunAsync(stop.Token);
while (worker.Processed < count) await Task.Delay(5);
Console.WriteLine($"drain {count / sw.Elapsed.TotalSeconds:F0}/s results={results} alloc/task={(GC.GetTotalAllocatedBytes(true) - alloc0) / count} gen0={GC.CollectionCount(0) - gc0} cpu={Process.GetCurrentProcess().TotalProcessorTime}");
stop.Cancel();
await run;
