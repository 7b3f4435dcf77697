using System.Globalization;

namespace Celeriac.Benchmarks;

/// <summary>
/// The pool figures (Redis): Celeriac's worker pools against Celery's on the same pre-filled queues, as the drains
/// are measured (a Celery client's messages, one worker process, first message taken to last result stored).
/// <c>-P prefork -c 2</c> against Celery's default pool on no-op and CPU-bound tasks; <c>-P threads -c 8</c> against
/// Celery's threads pool on blocking tasks, and Celeriac's default async pool on the same load for contrast.
/// </summary>
internal static partial class Bench
{
    /// <summary>tasks.cpu's n: the plain loop of i * i for i &lt; n takes about 2 ms in CPython on the benchmark machine.</summary>
    private const int CpuN = 50_000;

    /// <summary>tasks.block's sleep.</summary>
    private const int BlockMs = 50;

    private const int MaxBlockCount = 400;

    private static int CpuCount(BenchOptions o) => Math.Max(o.Count / 10, 1);

    private static int BlockCount(BenchOptions o) => Math.Min(o.Count, MaxBlockCount);

    private static void AddPoolRows(BenchOptions o, Comparison comparison, string T, DrainEnds ends)
    {
        string drain = "Celery-sent queue, 1 worker process, first message taken to " + ends.WithResults;
        comparison.Add("prefork_drain_noop", "tasks/s", (T, "prefork_drain_noop"), (CeleryPrefork(T), "drain_with_results"), null, null,
            $"Celeriac -P prefork -c 2 against Celery's drain_with_results above (the same messages): tasks.add, {drain}");
        comparison.Add("prefork_drain_cpu", "tasks/s", (T, "prefork_drain_cpu"), (CeleryPrefork(T), "prefork_drain_cpu"), null, null, string.Create(CultureInfo.InvariantCulture,
            $"-P prefork -c 2 both, {CpuCount(o):#,0} tasks.cpu({CpuN}): the same loop summing i*i for i < {CpuN} (about 2 ms a call in CPython, far less in C#), {drain}"));
        string block = string.Create(CultureInfo.InvariantCulture,
            $"{BlockCount(o)} tasks.block({BlockMs}): Thread.Sleep / time.sleep {BlockMs} ms (at most {8 * 1000 / BlockMs} tasks/s with 8 slots), {drain}");
        comparison.Add("threads_block", "tasks/s", (T, "threads_block"), null, (CeleryThreads(T), "threads_block"), null,
            "-P threads -c 8 both, " + block);
        comparison.Add("threads_block_async", "tasks/s", (T, "threads_block_async"), null, (CeleryThreads(T), "threads_block"), null,
            "Celeriac's default -P async -c 8 on the same load (blocking calls hold .NET thread-pool threads), against Celery -P threads -c 8");
    }

    private static async Task PoolsAsync(BenchOptions o, Report report, IBrokerProbe probe, string workDir)
    {
        string T = probe.Transport;
        string broker = probe.BrokerUrl, backend = probe.BackendUrl;
        WorkerProcess Celeriac(string pool, int concurrency) => WorkerProcess.Start(workDir, broker, "w1",
            "--result-backend", backend, "-P", pool, "-c", concurrency.ToString(CultureInfo.InvariantCulture));
        WorkerProcess Celery(string pool, int concurrency) => PythonCelery.StartWorker(broker, backend, pool, concurrency, "bench_tasks");
        const string ToLast = "from the first message taken to the last result stored";
        const string CeleryLabelPrefork = "Celery -P prefork -c 2";
        const string CeleryLabelThreads = "Celery -P threads -c 8";

        // No-op: the drain_with_results messages (kept by the probe), Celery's figure is that drain's.
        await MeasureAsync(report, T, "prefork_drain_noop", "tasks/s", null, $"Celeriac worker process -P prefork -c 2, tasks.add, {ToLast}", () =>
            DrainAsync(probe, "drain_with_results", o.Count, true, () => Celeriac("prefork", PreforkConcurrency), "Celeriac -P prefork -c 2", RunTimeout(o.Count)));

        int cpuCount = CpuCount(o);
        bool cpuFilled = await PrefillAsync(probe, "prefork_drain_cpu", cpuCount, RunTimeout(cpuCount), ignoreResult: false, "cpu", CpuN);
        foreach ((string transport, string label, Func<WorkerProcess> start, TimeSpan limit) in ((string, string, Func<WorkerProcess>, TimeSpan)[])
        [
            (T, "Celeriac -P prefork -c 2", () => Celeriac("prefork", PreforkConcurrency), RunTimeout(cpuCount)),
            (CeleryPrefork(T), CeleryLabelPrefork, () => Celery("prefork", PreforkConcurrency), CeleryDrainLimit),
        ])
        {
            await MeasureAsync(report, transport, "prefork_drain_cpu", "tasks/s", null, $"{label}, {cpuCount} tasks.cpu({CpuN}), {ToLast}", () =>
                cpuFilled
                    ? DrainAsync(probe, "prefork_drain_cpu", cpuCount, true, start, label, limit)
                    : throw new InvalidOperationException("the Celery client's prefill failed (see above)"));
        }

        int blockCount = BlockCount(o);
        bool blockFilled = await PrefillAsync(probe, "threads_block", blockCount, RunTimeout(blockCount), ignoreResult: false, "block", BlockMs);
        foreach ((string transport, string name, string label, Func<WorkerProcess> start, TimeSpan limit) in ((string, string, string, Func<WorkerProcess>, TimeSpan)[])
        [
            (T, "threads_block", "Celeriac -P threads -c 8", () => Celeriac("threads", ThreadsConcurrency), RunTimeout(blockCount)),
            (T, "threads_block_async", "Celeriac -P async -c 8", () => Celeriac("async", ThreadsConcurrency), RunTimeout(blockCount)),
            (CeleryThreads(T), "threads_block", CeleryLabelThreads, () => Celery("threads", ThreadsConcurrency), CeleryDrainLimit),
        ])
        {
            await MeasureAsync(report, transport, name, "tasks/s", null, $"{label}, {blockCount} tasks.block({BlockMs}), {ToLast}", () =>
                blockFilled
                    ? DrainAsync(probe, "threads_block", blockCount, true, start, label, limit)
                    : throw new InvalidOperationException("the Celery client's prefill failed (see above)"));
        }
    }
}
