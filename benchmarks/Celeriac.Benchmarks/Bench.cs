using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Celeriac.Results;
using Celeriac.Transport;
using Celeriac.Worker;
using Microsoft.Data.Sqlite;

namespace Celeriac.Benchmarks;

/// <summary>
/// The benchmark's tasks, with the same names and work as <c>benchmarks/python/bench_tasks.py</c>: the no-op
/// <c>tasks.add(i, i)</c> most figures run, and the pool figures' CPU-bound and blocking tasks.
/// </summary>
internal static class BenchTasks
{
    public const string Add = "tasks.add";

    /// <summary><c>tasks.cpu(n)</c>: <see cref="Cpu"/>.</summary>
    public const string CpuName = "tasks.cpu";

    /// <summary><c>tasks.block(ms)</c>: <see cref="Block"/>.</summary>
    public const string BlockName = "tasks.block";

    public const string Queue = "celery";

    /// <summary>Registers every task on a worker's app.</summary>
    public static void Register(CeleriacApp app)
    {
        app.Task(Add, (int x, int y) => x + y);
        app.Task(CpuName, Cpu);
        app.Task(BlockName, Block);
    }

    /// <summary>The sum of i * i for i &lt; n in a plain loop, as Python's <c>tasks.cpu</c> computes it.</summary>
    public static long Cpu(int n)
    {
        long total = 0;
        for (long i = 0; i < n; i++)
        {
            total += i * i;
        }

        return total;
    }

    /// <summary>Blocks its thread for <paramref name="ms"/> milliseconds (a blocking I/O call's stand-in), as <c>time.sleep</c> does.</summary>
    public static int Block(int ms)
    {
        Thread.Sleep(ms);
        return ms;
    }
}

/// <summary>A measured value, and what limits it when it is not the whole measurement asked for.</summary>
internal readonly record struct Measured(double Value, string? Caveat = null);

/// <summary>Runs the figures in order and prints them.</summary>
internal static partial class Bench
{
    private const int Inflight = 256;
    private const int RttWarmup = 100;
    private const int BootStarts = 5;
    private static readonly TimeSpan s_readyTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan s_stopTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_sampleTimeout = TimeSpan.FromSeconds(10);

    public static async Task<int> RunAsync(BenchOptions o)
    {
        Progress.Say(string.Create(CultureInfo.InvariantCulture,
            $"Celeriac benchmarks: {Environment.ProcessorCount} cores, {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}; count={o.Count} rtt-samples={o.RttSamples} workers={o.Workers} concurrency={o.EffectiveConcurrency}{(o.Pool is { } p ? " pool=" + p : "")}{(o.DisablePrefetch ? " prefetch=off" : "")}{(o.Events ? " events" : "")}; Celeriac's code {(IsReadyToRun(typeof(CeleriacApp).Assembly) ? "ReadyToRun (dotnet publish)" : "IL only, compiled by the JIT as it runs (dotnet run or build; dotnet publish makes it ReadyToRun)")}"));
        s_concurrency = o.EffectiveConcurrency;
        s_only = o.Only is { } only ? [.. only] : null;
        s_workerArgs =
        [
            .. o.Concurrency is { } c ? (string[])["-c", c.ToString(CultureInfo.InvariantCulture)] : [],
            .. o.Pool is { } pool ? (string[])["-P", pool] : [],
            .. o.DisablePrefetch ? (string[])["--disable-prefetch"] : [],
        ];
        var report = new Report();
        if (o.Memory)
        {
            await MemoryAsync(o, report);
        }

        if (o.Sqlite)
        {
            await SqliteAsync(o, report);
            await WorkerProcessAsync(report);
        }

        if (o.PostgreSql)
        {
            await PostgreSqlAsync(o, report);
        }

        var comparisons = new List<Comparison>();
        if (o.Redis)
        {
            comparisons.Add(await RedisAsync(o, report));
        }

        if (o.RabbitMq)
        {
            comparisons.Add(await RabbitMqAsync(o, report));
        }

        if (report.HasTable)
        {
            report.WriteTable(string.Create(CultureInfo.InvariantCulture, $"Celeriac, {Environment.ProcessorCount} cores, count {o.Count}"));
        }

        foreach (Comparison table in comparisons)
        {
            table.WriteTable(string.Create(CultureInfo.InvariantCulture, $"{table.Title}, {Environment.ProcessorCount} cores, count {o.Count}"));
        }

        if (o.Markdown)
        {
            if (report.HasTable)
            {
                Console.Out.Write(report.ToMarkdown());
            }

            foreach (Comparison table in comparisons)
            {
                Console.Out.WriteLine();
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{table.Title}, {Environment.ProcessorCount} cores, count {o.Count}:"));
                Console.Out.WriteLine();
                Console.Out.Write(table.ToMarkdown());
            }
        }

        return report.Figures.Any(f => f.Error is not null) ? 1 : 0;
    }

    private static TimeSpan RunTimeout(int count) => TimeSpan.FromSeconds(60) + TimeSpan.FromMilliseconds(2.0 * count);

    /// <summary>Runs one measurement; a failure is recorded as the figure's error, and the run goes on.</summary>
    private static Task MeasureAsync(Report report, string transport, string name, string unit, Goal? goal, string? note, Func<Task<double>> measure) =>
        MeasureAsync(report, transport, name, unit, goal, note, async () => new Measured(await measure()));

    /// <summary>Runs one measurement that may come with a caveat (see <see cref="Measured"/>).</summary>
    private static async Task MeasureAsync(Report report, string transport, string name, string unit, Goal? goal, string? note, Func<Task<Measured>> measure)
    {
        if (Skipped(name))
        {
            return;
        }

        try
        {
            Measured m = await measure();
            report.Add(transport, name, m.Value, unit, goal, note, m.Caveat);
        }
        catch (Exception ex)
        {
            report.Fail(transport, name, unit, $"{ex.GetType().Name}: {ex.Message}", goal);
        }
    }

    /// <summary>The figures to measure (--only), or null for all of them.</summary>
    private static HashSet<string>? s_only;

    /// <summary>Whether --only leaves this figure out (rtt_p99 comes with rtt_p50, worker_idle_cpu with worker_idle_rss).</summary>
    private static bool Skipped(string name) => s_only is { } only && !only.Contains(name);

    /// <summary>The in-process worker's concurrency (the core count unless --concurrency).</summary>
    private static int s_concurrency = Environment.ProcessorCount;

    /// <summary>Extra worker process arguments (-c N with --concurrency, -P with --pool, --disable-prefetch).</summary>
    private static string[] s_workerArgs = [];

    /// <summary>Whether an assembly carries precompiled (ReadyToRun) code.</summary>
    private static bool IsReadyToRun(System.Reflection.Assembly assembly)
    {
        using FileStream file = File.OpenRead(assembly.Location);
        using var pe = new System.Reflection.PortableExecutable.PEReader(file);
        return pe.PEHeaders.CorHeader?.ManagedNativeHeaderDirectory.Size > 0;
    }

    /// <summary>A client (or in-process worker) app with tasks.add; the result backend is the broker's default unless given.</summary>
    private static CeleriacApp NewApp(string brokerUrl, string? resultBackend = null)
    {
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = brokerUrl, ResultBackend = resultBackend, Concurrency = s_concurrency });
        app.Task(BenchTasks.Add, (int x, int y) => x + y);
        return app;
    }

    private static string MemoryUrl() => "memory://bench" + Guid.NewGuid().ToString("N");

    // ---------------------------------------------------------------- memory

    private static async Task MemoryAsync(BenchOptions o, Report report)
    {
        const string T = "memory";
        await MeasureAsync(report, T, "publish", "tasks/s", null, $"{Inflight} in flight", async () =>
        {
            await using CeleriacApp app = NewApp(MemoryUrl());
            return await PublishRateAsync(app, o.Count);
        });

        // The first drain JIT-compiles the worker's path (tiered compilation promotes hot code after ~100 ms), so
        // an unrecorded drain goes first: the figures are a warm process, as a worker is after its first seconds.
        Progress.Say("memory: warm-up drain (not recorded)");
        try
        {
            await MemoryDrainAsync(o.Count, ignoreResult: false);
            await Task.Delay(500);
        }
        catch (Exception ex)
        {
            Progress.Say($"memory warm-up drain failed: {ex.Message}");
        }

        string drainNote = $"in-process worker, concurrency {s_concurrency}";
        await MeasureAsync(report, T, "drain_with_results", "tasks/s", Goal.Min(400_000), drainNote, () => MemoryDrainAsync(o.Count, ignoreResult: false));
        if (o.Events)
        {
            await MeasureAsync(report, T, "drain_with_results_events", "tasks/s", null, drainNote + ", -E", () => MemoryDrainAsync(o.Count, ignoreResult: false, events: true));
        }

        await MeasureAsync(report, T, "drain_without_results", "tasks/s", null, drainNote, () => MemoryDrainAsync(o.Count, ignoreResult: true));
        if (o.Events)
        {
            await MeasureAsync(report, T, "drain_without_results_events", "tasks/s", null, drainNote + ", -E", () => MemoryDrainAsync(o.Count, ignoreResult: true, events: true));
            AddEventsRatios(report, T);
        }

        if (o.Telemetry)
        {
            await MeasureAsync(report, T, "drain_with_results_telemetry", "tasks/s", null, drainNote + ", traces and metrics listened to", () => MemoryDrainAsync(o.Count, ignoreResult: false, telemetry: true));
            await MeasureAsync(report, T, "drain_without_results_telemetry", "tasks/s", null, drainNote + ", traces and metrics listened to", () => MemoryDrainAsync(o.Count, ignoreResult: true, telemetry: true));
            foreach (string drain in (string[])["drain_with_results", "drain_without_results"])
            {
                if (report.Figures.LastOrDefault(f => f.Transport == T && f.Name == drain)?.Value is { } without
                    && report.Figures.LastOrDefault(f => f.Transport == T && f.Name == drain + "_telemetry")?.Value is { } with
                    && without > 0)
                {
                    report.Add(T, drain + "_telemetry_ratio", with / without, "×", null, "with a trace and metrics listener ÷ without");
                }
            }
        }

        double[]? rtt = null;
        string rttNote = $"{o.RttSamples} sequential after {RttWarmup} warm-up, in-process worker";
        await MeasureAsync(report, T, "rtt_p50", "ms", null, rttNote, async () =>
        {
            await using CeleriacApp app = NewApp(MemoryUrl());
            var worker = new CeleriacWorker(app);
            using var stop = new CancellationTokenSource();
            Task run = worker.RunAsync(stop.Token);
            try
            {
                await worker.Ready.WaitAsync(s_readyTimeout);
                rtt = await RoundTripsAsync(app, o.RttSamples);
            }
            finally
            {
                await StopInProcessAsync(stop, run);
            }

            return Percentile(rtt, 0.50);
        });
        RecordP99(report, T, rtt, rttNote);
    }

    private static void RecordP99(Report report, string transport, double[]? rtt, string note)
    {
        if (Skipped("rtt_p50"))
        {
            return; // the p99 comes from the p50's samples
        }

        if (rtt is null)
        {
            report.Fail(transport, "rtt_p99", "ms", "no samples (see rtt_p50)");
        }
        else
        {
            report.Add(transport, "rtt_p99", Percentile(rtt, 0.99), "ms", null, note);
        }
    }

    /// <summary>
    /// The cost of task events: each drain with <c>-E</c> ÷ the same drain without, measured one after the other
    /// (below 1: slower with events).
    /// </summary>
    private static void AddEventsRatios(Report report, string transport)
    {
        foreach (string drain in (string[])["drain_with_results", "drain_without_results"])
        {
            if (report.Figures.LastOrDefault(f => f.Transport == transport && f.Name == drain)?.Value is { } without
                && report.Figures.LastOrDefault(f => f.Transport == transport && f.Name == drain + "_events")?.Value is { } with
                && without > 0)
            {
                report.Add(transport, drain + "_events_ratio", with / without, "×", null, "with -E ÷ without");
            }
        }
    }

    /// <summary>Pre-fills a fresh in-process queue, then times an in-process worker until it has processed them all.</summary>
    private static async Task<double> MemoryDrainAsync(int count, bool ignoreResult, bool events = false, bool telemetry = false)
    {
        using TelemetryListener? listening = telemetry ? new TelemetryListener() : null;
        await using CeleriacApp app = NewApp(MemoryUrl());
        app.Options.TaskEvents = events;
        List<TransportMessage> messages = BuildMessages(app, count, ignoreResult, out string[] ids);
        ITransport transport = app.Transport;
        await transport.DeclareQueueAsync(new QueueDeclaration(BenchTasks.Queue, BenchTasks.Queue, BenchTasks.Queue));
        await transport.PublishAsync("", BenchTasks.Queue, messages);
        IResultBackend backend = app.ResultBackend;

        // The clock times the worker, not a collection of the garbage the benchmark made building the messages (a
        // collection of a few milliseconds, in a drain of a few tens).
        messages = [];
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var worker = new CeleriacWorker(app);
        using var stop = new CancellationTokenSource();
        TimeSpan timeout = RunTimeout(count);
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
        long start = Stopwatch.GetTimestamp();
        Task run = worker.RunAsync(stop.Token);
        TimeSpan elapsed;
        try
        {
            while (worker.Processed < count && !run.IsCompleted)
            {
                if (Stopwatch.GetElapsedTime(start) > timeout)
                {
                    throw new TimeoutException($"processed {worker.Processed} of {count} in {timeout.TotalSeconds:0}s");
                }

                await Task.Delay(1);
            }

            elapsed = Stopwatch.GetElapsedTime(start);
            Progress.Say(string.Create(CultureInfo.InvariantCulture,
                $"memory drain ({(ignoreResult ? "without" : "with")} results{(events ? ", -E" : "")}{(listening is null ? "" : $", telemetry: {listening.Spans} spans, {listening.Measurements} measurements")}): {elapsed.TotalMilliseconds:0} ms, {(GC.GetTotalAllocatedBytes(precise: true) - allocated) / count} B allocated/task, GCs gen0/1/2 {GC.CollectionCount(0) - gen0}/{GC.CollectionCount(1) - gen1}/{GC.CollectionCount(2) - gen2}"));
            if (run.IsCompleted)
            {
                await run;
                throw new InvalidOperationException($"the worker stopped after {worker.Processed} of {count}");
            }
        }
        finally
        {
            await StopInProcessAsync(stop, run);
        }

        if (!ignoreResult)
        {
            await VerifyResultsAsync(backend, ids, TimeSpan.FromSeconds(30));
        }

        return count / elapsed.TotalSeconds;
    }

    private static async Task StopInProcessAsync(CancellationTokenSource stop, Task run)
    {
        await stop.CancelAsync();
        try
        {
            await run.WaitAsync(s_stopTimeout);
        }
        catch (Exception ex) when (ex is OperationCanceledException or TimeoutException)
        {
            Progress.Say($"in-process worker stop: {ex.GetType().Name}");
        }
    }

    // ---------------------------------------------------------------- sqlite

    private static async Task SqliteAsync(BenchOptions o, Report report)
    {
        const string T = "sqlite";
        await MeasureAsync(report, T, "publish", "tasks/s", null, $"{Inflight} in flight", async () =>
        {
            using var dir = new TempDir();
            await using CeleriacApp app = NewApp(dir.SqliteUrl("publish.db"));
            return await PublishRateAsync(app, o.Count);
        });

        string workers = string.Create(CultureInfo.InvariantCulture, $"{o.Workers} worker processes, concurrency {o.EffectiveConcurrency} each");
        await MeasureAsync(report, T, "drain_with_results", "tasks/s", o.Workers == 2 ? Goal.Min(12_000) : null, workers, () => SqliteDrainAsync(o, ignoreResult: false));
        if (o.Events)
        {
            await MeasureAsync(report, T, "drain_with_results_events", "tasks/s", null, workers + ", -E", () => SqliteDrainAsync(o, ignoreResult: false, events: true));
        }

        await MeasureAsync(report, T, "drain_without_results", "tasks/s", null, workers, () => SqliteDrainAsync(o, ignoreResult: true));
        if (o.Events)
        {
            await MeasureAsync(report, T, "drain_without_results_events", "tasks/s", null, workers + ", -E", () => SqliteDrainAsync(o, ignoreResult: true, events: true));
            AddEventsRatios(report, T);
        }

        double[]? rtt = null;
        string rttNote = $"{o.RttSamples} sequential after {RttWarmup} warm-up, 1 worker process";
        await MeasureAsync(report, T, "rtt_p50", "ms", null, rttNote, async () =>
        {
            using var dir = new TempDir();
            string url = dir.SqliteUrl("rtt.db");
            List<WorkerProcess> worker = await WorkerProcess.StartManyAsync(dir.Path, url, 1, s_readyTimeout, s_workerArgs);
            try
            {
                await using CeleriacApp app = NewApp(url);
                rtt = await RoundTripsAsync(app, o.RttSamples);
            }
            finally
            {
                await StopAllAsync(worker);
            }

            return Percentile(rtt, 0.50);
        });
        RecordP99(report, T, rtt, rttNote);
    }

    /// <summary>
    /// Starts the worker processes, waits until each is ready, then publishes the whole queue in one transaction and
    /// times the workers: with results to the latest <c>date_done</c>, without to the moment no message row is left.
    /// </summary>
    private static async Task<double> SqliteDrainAsync(BenchOptions o, bool ignoreResult, bool events = false)
    {
        int count = o.Count;
        using var dir = new TempDir();
        string file = dir.File("drain.db");
        string url = "sqlite:///" + file;
        TimeSpan timeout = RunTimeout(count);
        List<WorkerProcess> workers = await WorkerProcess.StartManyAsync(dir.Path, url, o.Workers, s_readyTimeout, [.. s_workerArgs, .. events ? (string[])["-E"] : []]);
        try
        {
            await using CeleriacApp app = NewApp(url);
            List<TransportMessage> messages = BuildMessages(app, count, ignoreResult, out string[] ids);
            ITransport transport = app.Transport;
            IResultBackend backend = app.ResultBackend;
            await transport.DeclareQueueAsync(new QueueDeclaration(BenchTasks.Queue, BenchTasks.Queue, BenchTasks.Queue));
            using var counter = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = file, Pooling = false }.ToString());
            counter.Open();
            using SqliteCommand rows = counter.CreateCommand();
            rows.CommandText = "SELECT count(*) FROM messages";

            await transport.PublishAsync("", BenchTasks.Queue, messages);
            DateTimeOffset published = TimeProvider.System.GetUtcNow();
            long start = Stopwatch.GetTimestamp();

            long left;
            while ((left = (long)rows.ExecuteScalar()!) > 0)
            {
                if (Stopwatch.GetElapsedTime(start) > timeout)
                {
                    throw new TimeoutException($"{left} of {count} messages still in the broker after {timeout.TotalSeconds:0}s; workers: {string.Join(" / ", workers.Select(w => w.Tail))}");
                }

                await Task.Delay(5);
            }

            TimeSpan empty = Stopwatch.GetElapsedTime(start);
            if (ignoreResult)
            {
                return count / empty.TotalSeconds;
            }

            DateTimeOffset last = await VerifyResultsAsync(backend, ids, timeout - empty);
            return count / (last - published).TotalSeconds;
        }
        finally
        {
            await StopAllAsync(workers);
        }
    }

    private static async Task StopAllAsync(List<WorkerProcess> workers)
    {
        try
        {
            await Task.WhenAll(workers.Select(w => w.StopAsync(s_stopTimeout)));
        }
        finally
        {
            foreach (WorkerProcess w in workers)
            {
                await w.DisposeAsync();
            }
        }
    }

    // ---------------------------------------------------------------- worker process

    private static async Task WorkerProcessAsync(Report report)
    {
        const string T = "sqlite";
        using var dir = new TempDir();
        string url = dir.SqliteUrl("idle.db");
        double cpu = double.NaN;
        long cpuTicks = 0;
        await MeasureAsync(report, T, "worker_idle_rss", "MB", Goal.Below(60), "VmRSS after 3 s idle, sqlite, default options", async () =>
        {
            List<WorkerProcess> one = await WorkerProcess.StartManyAsync(dir.Path, url, 1, s_readyTimeout);
            try
            {
                WorkerProcess w = one[0];
                await Task.Delay(TimeSpan.FromSeconds(3));
                double rss = w.ReadRssMegabytes();
                Progress.Say(string.Create(CultureInfo.InvariantCulture, $"idle worker: VmRSS {rss:0.0} MB; measuring CPU from 15 s to 35 s idle"));

                // Steady state: the runtime compiles hot methods again in the background for the first seconds.
                await Task.Delay(TimeSpan.FromSeconds(12));
                long ticks0 = w.ReadCpuTicks();
                long start = Stopwatch.GetTimestamp();
                await Task.Delay(TimeSpan.FromSeconds(20));
                long ticks1 = w.ReadCpuTicks();
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;

                // Clock ticks are 1/100 s (USER_HZ): the resolution is 0.05% of a core over 20 s, so the figure is
                // rounded to 0.1 (20 ticks is 1.0%, not 0.99997% "below 1%").
                cpu = Math.Round((ticks1 - ticks0) / 100.0 / seconds * 100.0, 1);
                cpuTicks = ticks1 - ticks0;
                return rss;
            }
            finally
            {
                await StopAllAsync(one);
            }
        });
        if (!double.IsNaN(cpu))
        {
            report.Add(T, "worker_idle_cpu", cpu, "% of one core", Goal.Below(1), string.Create(CultureInfo.InvariantCulture, $"{cpuTicks} ticks of 10 ms over 20 s, from 15 s idle on"));
        }
        else if (!Skipped("worker_idle_rss"))
        {
            report.Fail(T, "worker_idle_cpu", "% of one core", "not measured (see worker_idle_rss)", Goal.Below(1));
        }

        await MeasureAsync(report, T, "boot_to_ready", "ms", Goal.Below(300), $"median of {BootStarts}: Process.Start of dotnet Celeriac.Benchmarks.dll worker to its ready line", async () =>
        {
            var times = new List<double>();
            for (int i = 0; i < BootStarts; i++)
            {
                List<WorkerProcess> one = await WorkerProcess.StartManyAsync(dir.Path, url, 1, s_readyTimeout);
                try
                {
                    times.Add((await one[0].Ready).TotalMilliseconds);
                }
                finally
                {
                    await StopAllAsync(one);
                }
            }

            Progress.Say("boot to ready (ms): " + string.Join(", ", times.Select(t => t.ToString("0", CultureInfo.InvariantCulture))));
            return Percentile([.. times], 0.50);
        });
    }

    // ---------------------------------------------------------------- shared

    /// <summary>Warms up with 100 publishes, then publishes <paramref name="count"/> with at most <paramref name="inflight"/> awaits in flight.</summary>
    private static async Task<double> PublishRateAsync(CeleriacApp app, int count, int inflight = Inflight)
    {
        CeleriacTask add = app.Tasks.TryGet(BenchTasks.Add, out CeleriacTask? t) ? t : throw new InvalidOperationException("no tasks.add");
        for (int i = 0; i < RttWarmup; i++)
        {
            await add.DelayAsync(i, i);
        }

        TimeSpan timeout = RunTimeout(count);
        int next = -1;
        long start = Stopwatch.GetTimestamp();
        var loops = new Task[Math.Min(inflight, count)];
        for (int k = 0; k < loops.Length; k++)
        {
            loops[k] = Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < count)
                {
                    await add.DelayAsync(i, i);
                }
            });
        }

        await Task.WhenAll(loops).WaitAsync(timeout);
        return count / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>The protocol v2 messages of <c>tasks.add(i, i)</c>, built as <c>SendTaskAsync</c> builds them.</summary>
    private static List<TransportMessage> BuildMessages(CeleriacApp app, int count, bool ignoreResult, out string[] ids)
    {
        var options = new ApplyOptions { IgnoreResult = ignoreResult };
        var messages = new List<TransportMessage>(count);
        ids = new string[count];
        for (int i = 0; i < count; i++)
        {
            TransportMessage m = app.BuildMessage(BenchTasks.Add, [i, i], null, options, out string queue);
            if (queue != BenchTasks.Queue)
            {
                throw new InvalidOperationException($"tasks.add routes to '{queue}', not '{BenchTasks.Queue}'");
            }

            messages.Add(m);
            ids[i] = m.CorrelationId!;
        }

        return messages;
    }

    /// <summary>
    /// Waits until every result is ready (polling <c>GetAsync</c>), then reads them all: every one must be SUCCESS.
    /// Returns the latest <c>date_done</c>.
    /// </summary>
    private static async Task<DateTimeOffset> VerifyResultsAsync(IResultBackend backend, string[] ids, TimeSpan timeout)
    {
        long start = Stopwatch.GetTimestamp();

        // The last published id is among the last to finish: wait for it first, then sweep the rest.
        for (int i = ids.Length - 1; i >= 0; i--)
        {
            while (await backend.GetAsync(ids[i]) is not { } meta || !TaskStates.IsReady(meta.Status))
            {
                if (Stopwatch.GetElapsedTime(start) > timeout)
                {
                    throw new TimeoutException($"result {i} ({ids[i]}) not ready within {timeout.TotalSeconds:0}s");
                }

                await Task.Delay(5);
            }
        }

        DateTimeOffset last = DateTimeOffset.MinValue;
        int failed = 0;
        string? first = null;
        foreach (string id in ids)
        {
            TaskResultMeta meta = await backend.GetAsync(id) ?? throw new InvalidOperationException($"result {id} vanished");
            if (meta.Status != TaskStates.Success)
            {
                failed++;
                first ??= $"{id}: {meta.Status} {meta.Exception?.Type}: {meta.Exception?.Message}";
            }
            else if (meta.DateDone is { } done && done > last)
            {
                last = done;
            }
        }

        if (failed > 0)
        {
            throw new InvalidOperationException($"{failed} of {ids.Length} results are not SUCCESS; first: {first}");
        }

        return last;
    }

    /// <summary>Sequential DelayAsync + GetAsync&lt;int&gt;: 100 warm-up, then <paramref name="samples"/> timed (ms).</summary>
    private static async Task<double[]> RoundTripsAsync(CeleriacApp app, int samples)
    {
        CeleriacTask add = app.Tasks.TryGet(BenchTasks.Add, out CeleriacTask? t) ? t : throw new InvalidOperationException("no tasks.add");
        var ms = new double[samples];
        for (int i = -RttWarmup; i < samples; i++)
        {
            long start = Stopwatch.GetTimestamp();
            AsyncResult result = await add.DelayAsync(i, i);
            int sum = await result.GetAsync<int>(s_sampleTimeout);
            double elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (sum != 2 * i)
            {
                throw new InvalidOperationException($"tasks.add({i}, {i}) returned {sum}");
            }

            if (i >= 0)
            {
                ms[i] = elapsed;
            }
        }

        Array.Sort(ms);
        return ms;
    }

    /// <summary>Nearest-rank percentile of sorted (or unsorted: it sorts a copy) values.</summary>
    private static double Percentile(double[] values, double p)
    {
        double[] sorted = [.. values];
        Array.Sort(sorted);
        int rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    /// <summary>A fresh temp directory, deleted on dispose.</summary>
    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("celeriac-bench-").FullName;

        public string File(string name) => System.IO.Path.Join(Path, name);

        public string SqliteUrl(string name) => "sqlite:///" + File(name);

        public void Dispose()
        {
            SqliteConnection.ClearAllPools();
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException ex)
            {
                Progress.Say($"could not delete {Path}: {ex.Message}");
            }
        }
    }
}
