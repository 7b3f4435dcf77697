using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Celeriac.Benchmarks;

/// <summary>
/// Celeriac against Python Celery 5.2 on one broker server the benchmark starts (Redis, RabbitMQ), in the same run:
/// publish rate, drains of a queue a Celery client filled (with and without results) and round trips, for one
/// Celeriac worker process and Celery's prefork -c 2 and threads -c 8 workers. Every drain reads the same messages:
/// sent by a Python Celery client once, kept by the <see cref="IBrokerProbe"/> and put back before each worker starts.
/// </summary>
internal static partial class Bench
{
    private const int PreforkConcurrency = 2;
    private const int ThreadsConcurrency = 8;

    /// <summary>How long a worker may take from its start to the first message it takes off the queue.</summary>
    private static readonly TimeSpan s_firstMessageTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a Celery worker may drain: one still draining then (Celery's threads pool on RabbitMQ runs tens of
    /// tasks a second) is stopped there, and its rate is what it did by then, with a caveat saying so.
    /// </summary>
    public static readonly TimeSpan CeleryDrainLimit = TimeSpan.FromSeconds(60);

    private static string CeleryClient(string transport) => transport + "/celery";

    private static string CeleryPrefork(string transport) => transport + "/celery-prefork-c2";

    private static string CeleryThreads(string transport) => transport + "/celery-threads-c8";

    /// <summary>
    /// Starts the server, connects the probe, measures every figure of the comparison and stops what it started (also
    /// when a step fails: the figure records the failure and the run goes on).
    /// </summary>
    private static async Task<Comparison> VersusCeleryAsync<TServer>(BenchOptions o, Report report, string transport, string title, DrainEnds ends,
        Func<CancellationToken, Task<TServer>> startServer, Func<TServer, Task<IBrokerProbe>> connect, bool pools = false, bool warm = false, string? aot = null)
        where TServer : IAsyncDisposable
    {
        string T = transport;
        var comparison = new Comparison(report, T, title);
        const string Pub = "Celery: add.delay() loop, one Python process";
        comparison.Add("publish", "tasks/s", (T, "publish"), (CeleryClient(T), "publish"), (CeleryClient(T), "publish"), null,
            $"Celeriac: DelayAsync, {Inflight} in flight; {Pub}");
        comparison.Add("publish_sequential", "tasks/s", (T, "publish_sequential"), (CeleryClient(T), "publish"), (CeleryClient(T), "publish"), null,
            $"Celeriac: DelayAsync, 1 in flight; {Pub}");
        const string Drain = "Celery-sent queue, 1 worker process, first message taken to ";
        comparison.Add("drain_with_results", "tasks/s", (T, "drain_with_results"), (CeleryPrefork(T), "drain_with_results"), (CeleryThreads(T), "drain_with_results"), RatioGoal(T),
            Drain + ends.WithResults);
        if (warm)
        {
            comparison.Add("drain_with_results_warm", "tasks/s", (T, "drain_with_results_warm"), (CeleryPrefork(T), "drain_with_results_warm"), null, null,
                "the same, each worker after an unrecorded drain of the same messages (no start-up in the figure)");
        }

        if (aot is not null)
        {
            comparison.Add("drain_with_results_aot", "tasks/s", (T, "drain_with_results_aot"), (CeleryPrefork(T), "drain_with_results"), (CeleryThreads(T), "drain_with_results"), RatioGoal(T),
                "the same by a NativeAOT worker (samples/AotWorker, which scripts/bench.sh publishes): no JIT in a fresh process");
        }

        comparison.Add("drain_without_results", "tasks/s", (T, "drain_without_results"), (CeleryPrefork(T), "drain_without_results"), (CeleryThreads(T), "drain_without_results"), null,
            Drain + ends.WithoutResults + " (ignore_result)");
        if (o.Events)
        {
            comparison.Add("drain_with_results_events", "tasks/s", (T, "drain_with_results_events"), (CeleryPrefork(T), "drain_with_results_events"), null, null,
                "the same with -E on both sides");
            comparison.Add("drain_without_results_events", "tasks/s", (T, "drain_without_results_events"), (CeleryPrefork(T), "drain_without_results_events"), null, null,
                "the same with -E on both sides (ignore_result)");
            comparison.Add("drain_with_results_events_ratio", "×", (T, "drain_with_results_events_ratio"), (CeleryPrefork(T), "drain_with_results_events_ratio"), null, null,
                "each side's drain with -E ÷ without");
            comparison.Add("drain_without_results_events_ratio", "×", (T, "drain_without_results_events_ratio"), (CeleryPrefork(T), "drain_without_results_events_ratio"), null, null,
                "each side's drain with -E ÷ without (ignore_result)");
        }

        string rtt = $"{o.RttSamples} sequential after {RttWarmup} warm-up, each its own client and worker";
        comparison.Add("rtt_p50", "ms", (T, "rtt_p50"), (CeleryPrefork(T), "rtt_p50"), (CeleryThreads(T), "rtt_p50"), null, rtt);
        comparison.Add("rtt_p99", "ms", (T, "rtt_p99"), (CeleryPrefork(T), "rtt_p99"), (CeleryThreads(T), "rtt_p99"), null, rtt);
        if (pools)
        {
            AddPoolRows(o, comparison, T, ends);
        }

        TServer server;
        IBrokerProbe probe;
        try
        {
            // A signal while the server starts cancels the start, which then stops what it had started.
            Task<TServer> starting = startServer(Cleanup.Stopping);
            using (Cleanup.Register($"{T} server (starting)", async () => await ((Task)starting).ContinueWith(_ => { }, TaskScheduler.Default)))
            {
                server = await starting;
            }
        }
        catch (Exception ex)
        {
            report.Fail(T, "server", "", $"{ex.GetType().Name}: {ex.Message}");
            return comparison;
        }

        using (Cleanup.Register($"{T} server", server.DisposeAsync))
        {
            await using (server)
            {
                try
                {
                    probe = await connect(server);
                }
                catch (Exception ex)
                {
                    report.Fail(T, "server", "", $"{ex.GetType().Name}: {ex.Message}");
                    return comparison;
                }

                await using (probe)
                {
                    Progress.Say($"{T}: {probe}");
                    await CompareAsync(o, report, probe, pools, warm, aot);
                }
            }
        }

        if (comparison.Ratio("drain_with_results", prefork: true) is { } ratio)
        {
            report.Add(T, "drain_with_results_vs_celery_prefork", ratio, "×", RatioGoal(T), "Celeriac ÷ Celery prefork -c 2");
        }

        if (comparison.Ratio("drain_with_results_aot", prefork: true) is { } aotRatio)
        {
            report.Add(T, "drain_with_results_aot_vs_celery_prefork", aotRatio, "×", RatioGoal(T), "Celeriac NativeAOT worker ÷ Celery prefork -c 2");
        }

        return comparison;
    }

    /// <param name="aot">The NativeAOT <c>samples/AotWorker</c>: its fresh drain with results is timed too.</param>
    /// <param name="warm">
    /// Also times each worker draining the messages a second time, with the worker still running: for a probe whose
    /// restore puts all messages back at once and whose reset leaves a running worker consuming (Redis: one RESTORE, FLUSHALL).
    /// </param>
    private static async Task CompareAsync(BenchOptions o, Report report, IBrokerProbe probe, bool pools, bool warm, string? aot)
    {
        string T = probe.Transport;
        string broker = probe.BrokerUrl, backend = probe.BackendUrl;
        TimeSpan timeout = RunTimeout(o.Count);
        using var dir = new TempDir();
        string[] celeriacWorkerArgs = ["--result-backend", backend, .. s_workerArgs];
        WorkerProcess StartCeleriac() => WorkerProcess.Start(dir.Path, broker, "w1", celeriacWorkerArgs);
        WorkerProcess StartPrefork() => PythonCelery.StartWorker(broker, backend, "prefork", PreforkConcurrency);
        WorkerProcess StartThreads() => PythonCelery.StartWorker(broker, backend, "threads", ThreadsConcurrency);
        (string Transport, string Label, Func<WorkerProcess> Start) celeriac = (T, "Celeriac worker process (default options)", StartCeleriac);
        (string Transport, string Label, Func<WorkerProcess> Start) prefork = (CeleryPrefork(T), "Celery -P prefork -c 2", StartPrefork);
        (string Transport, string Label, Func<WorkerProcess> Start) threads = (CeleryThreads(T), "Celery -P threads -c 8", StartThreads);
        var drainLimits = new Dictionary<string, TimeSpan>(StringComparer.Ordinal) { [T] = timeout, [prefork.Transport] = CeleryDrainLimit, [threads.Transport] = CeleryDrainLimit };
        string count = o.Count.ToString(CultureInfo.InvariantCulture);

        // Publish: nothing consumes; the queue is emptied after each client.
        await probe.ResetAsync();
        await MeasureAsync(report, T, "publish", "tasks/s", null, $"{Inflight} in flight, {probe.ResultsNote}", async () =>
        {
            await using CeleriacApp app = NewApp(broker, backend);
            return await PublishRateAsync(app, o.Count);
        });
        await probe.ResetAsync();
        await MeasureAsync(report, T, "publish_sequential", "tasks/s", null, $"one in flight, {probe.ResultsNote}", async () =>
        {
            await using CeleriacApp app = NewApp(broker, backend);
            return await PublishRateAsync(app, o.Count, inflight: 1);
        });
        await probe.ResetAsync();
        await MeasureAsync(report, CeleryClient(T), "publish", "tasks/s", null, $"add.delay() loop in one Python process, 100 warm-up, {probe.ResultsNote}", async () =>
        {
            JsonElement json = await PythonCelery.RunScriptAsync("publish.py", broker, backend, timeout, "--count", count, "--time-limit", TimeLimit(timeout));
            return json.GetProperty("rate").GetDouble();
        });
        await probe.ResetAsync();

        // The drains' messages, sent once by a Celery client (with and without ignore_result) and kept by the probe.
        foreach (bool results in (bool[])[true, false])
        {
            string name = results ? "drain_with_results" : "drain_without_results";
            bool filled = await PrefillAsync(probe, name, o.Count, timeout, ignoreResult: !results);
            string note = results ? "from the first message taken to the last result stored" : "from the first message taken to the queue empty";
            foreach ((string transport, string label, Func<WorkerProcess> start) in ((string, string, Func<WorkerProcess>)[])[celeriac, prefork, threads])
            {
                await MeasureAsync(report, transport, name, "tasks/s", null, $"{label}, {note}", () =>
                    filled
                        ? DrainAsync(probe, name, o.Count, results, start, label, drainLimits[transport])
                        : throw new InvalidOperationException("the Celery client's prefill failed (see above)"));
                if (warm && results && transport != threads.Transport)
                {
                    // The same drain by a worker that has drained these messages once already, unrecorded: the steady
                    // state of a worker that has run for a while, without a fresh process's start-up (for .NET, the
                    // JIT's recompiling of hot code while the drain runs).
                    await MeasureAsync(report, transport, name + "_warm", "tasks/s", null, $"{label}, after an unrecorded drain of the same messages, {note}", () =>
                        filled
                            ? DrainAsync(probe, name, o.Count, results, start, label + " (warm)", drainLimits[transport], warm: true)
                            : throw new InvalidOperationException("the Celery client's prefill failed (see above)"));
                }

                if (aot is not null && results && transport == T)
                {
                    // The same fresh drain by a NativeAOT worker process: the options it takes are the broker's, not -P or prefetch's.
                    string[] aotArgs = ["--result-backend", backend, .. o.Concurrency is { } c ? (string[])["-c", c.ToString(CultureInfo.InvariantCulture)] : []];
                    const string AotLabel = "Celeriac NativeAOT worker process (samples/AotWorker)";
                    await MeasureAsync(report, T, name + "_aot", "tasks/s", null, $"{AotLabel}, {note}", () =>
                        filled
                            ? DrainAsync(probe, name, o.Count, results, () => WorkerProcess.StartNative(aot, dir.Path, broker, "aot", aotArgs), AotLabel, drainLimits[T])
                            : throw new InvalidOperationException("the Celery client's prefill failed (see above)"));
                }

                if (o.Events && transport != threads.Transport)
                {
                    // The same drain with task events on, right after: Celeriac's worker process and Celery's prefork.
                    Func<WorkerProcess> withEvents = transport == T
                        ? () => WorkerProcess.Start(dir.Path, broker, "w1", [.. celeriacWorkerArgs, "-E"])
                        : () => PythonCelery.StartWorker(broker, backend, "prefork", PreforkConcurrency, events: true);
                    await MeasureAsync(report, transport, name + "_events", "tasks/s", null, $"{label} -E, {note}", () =>
                        filled
                            ? DrainAsync(probe, name, o.Count, results, withEvents, label + " -E", drainLimits[transport])
                            : throw new InvalidOperationException("the Celery client's prefill failed (see above)"));
                }
            }
        }

        if (o.Events)
        {
            AddEventsRatios(report, T);
            AddEventsRatios(report, prefork.Transport);
        }

        // Round trips: one worker at a time, its own client.
        await probe.ResetAsync();
        double[]? rtt = null;
        string rttNote = $"{o.RttSamples} sequential after {RttWarmup} warm-up, Celeriac client, 1 Celeriac worker process";
        await MeasureAsync(report, T, "rtt_p50", "ms", null, rttNote, async () =>
        {
            List<WorkerProcess> worker = await WorkerProcess.StartManyAsync(dir.Path, broker, 1, s_readyTimeout, celeriacWorkerArgs);
            try
            {
                await using CeleriacApp app = NewApp(broker, backend);
                rtt = await RoundTripsAsync(app, o.RttSamples);
            }
            finally
            {
                await StopAllAsync(worker);
            }

            return Percentile(rtt, 0.50);
        });
        RecordP99(report, T, rtt, rttNote);

        foreach ((string transport, string label, Func<WorkerProcess> start) in ((string, string, Func<WorkerProcess>)[])[prefork, threads])
        {
            await probe.ResetAsync();
            rtt = null;
            string note = $"{o.RttSamples} sequential after {RttWarmup} warm-up, add.delay().get() from Python, {label}";
            await MeasureAsync(report, transport, "rtt_p50", "ms", null, note, async () =>
            {
                WorkerProcess worker = start();
                try
                {
                    TimeSpan rttTimeout = s_readyTimeout + TimeSpan.FromMilliseconds(20.0 * (o.RttSamples + RttWarmup));
                    JsonElement json = await PythonCelery.RunScriptAsync("rtt.py", broker, backend, rttTimeout,
                        "--samples", o.RttSamples.ToString(CultureInfo.InvariantCulture), "--warmup", RttWarmup.ToString(CultureInfo.InvariantCulture));
                    rtt = [.. json.GetProperty("ms").EnumerateArray().Select(e => e.GetDouble())];
                }
                catch (Exception ex) when (worker.HasExited)
                {
                    throw new InvalidOperationException($"{label} exited: {worker.Tail}", ex);
                }
                finally
                {
                    await StopAllAsync([worker]);
                }

                return Percentile(rtt, 0.50);
            });
            RecordP99(report, transport, rtt, note);
        }

        if (pools)
        {
            await PoolsAsync(o, report, probe, dir.Path);
        }

        await probe.ResetAsync();
    }

    /// <summary>A Python script's own time limit: a little under the harness's, so that the script says how far it got.</summary>
    private static string TimeLimit(TimeSpan timeout) => (timeout.TotalSeconds * 0.9).ToString("0", CultureInfo.InvariantCulture);

    /// <summary>
    /// A Python Celery client sends <paramref name="count"/> tasks.add(i, i) (or, with <paramref name="task"/>, that
    /// task of <c>bench_tasks.py</c> with <paramref name="arg"/>); the probe keeps them as <paramref name="name"/> and empties the queue.
    /// </summary>
    private static async Task<bool> PrefillAsync(IBrokerProbe probe, string name, int count, TimeSpan timeout, bool ignoreResult, string task = "add", int arg = 0)
    {
        try
        {
            await probe.ResetAsync();
            string[] args =
            [
                "--count", count.ToString(CultureInfo.InvariantCulture), "--time-limit", TimeLimit(timeout), .. ignoreResult ? (string[])["--ignore-result"] : [],
                "--task", task, "--arg", arg.ToString(CultureInfo.InvariantCulture),
            ];
            JsonElement json = await PythonCelery.RunScriptAsync("prefill.py", probe.BrokerUrl, probe.BackendUrl, timeout, args);
            string kept = await probe.KeepAsync(name, count);
            await probe.ResetAsync();
            Progress.Say(string.Create(CultureInfo.InvariantCulture,
                $"{probe.Transport}: a Celery client sent {count} tasks.{task}{(ignoreResult ? " with ignore_result" : "")} in {json.GetProperty("seconds").GetDouble():0.0} s ({kept})"));
            return true;
        }
        catch (Exception ex)
        {
            Progress.Say($"{probe.Transport}: prefill{(ignoreResult ? " (ignore_result)" : "")} failed: {ex.GetType().Name}: {ex.Message}");
            return false;
        }
    }

    /// <summary>
    /// Puts the pre-filled queue back, starts a worker and times it from the first message it takes (the queue's
    /// length drops) to, with results, <paramref name="count"/> results stored, or without, the queue (and where
    /// the probe polls it, unacked) empty on two polls in a row (the first one's time counts). Then, with the worker
    /// still running, the probe confirms that no message is left ready or unacked. A drain still running after
    /// <paramref name="limit"/> is stopped there: its rate is over what it did, with a caveat.
    /// </summary>
    private static async Task<Measured> DrainAsync(IBrokerProbe probe, string name, int count, bool withResults, Func<WorkerProcess> start, string label, TimeSpan limit, bool warm = false)
    {
        await RestoreForDrainAsync(probe, name, count);
        long launched = Stopwatch.GetTimestamp();
        WorkerProcess worker = start();
        TimeSpan elapsed;
        long finished;
        string? caveat = null;
        try
        {
            if (warm)
            {
                // The warm-up drain: all of it done, then the same messages again for the running worker.
                while (!IsDrained(await probe.StateAsync(), count, withResults))
                {
                    ThrowIfGone(worker, label, launched, RunTimeout(count) + s_firstMessageTimeout, "in the warm-up drain");
                    await Task.Delay(10);
                }

                Progress.Say($"{probe.Transport}: {label}: warm-up drain done {Stopwatch.GetElapsedTime(launched).TotalMilliseconds:0} ms after start; {await probe.ConfirmEmptyAsync(s_firstMessageTimeout)}");

                // The waiting worker may take messages before the count could be checked: the time runs from the restore.
                await RestoreForDrainAsync(probe, name, count, checkCount: false);
            }

            while (!warm && await probe.QueuedAsync() >= count)
            {
                ThrowIfGone(worker, label, launched, s_firstMessageTimeout, "before taking a message");
                await Task.Delay(2);
            }

            long first = Stopwatch.GetTimestamp();
            long? done = null;
            DrainState state;
            while (true)
            {
                state = await probe.StateAsync();
                long now = Stopwatch.GetTimestamp();
                if (!IsDrained(state, count, withResults))
                {
                    done = null;
                }
                else if (done is null)
                {
                    done = now;
                }
                else
                {
                    break;
                }

                if (Stopwatch.GetElapsedTime(first, now) > limit)
                {
                    // Stopped here: the rate is what it did so far (results stored, or messages taken off the queue).
                    done = now;
                    break;
                }

                ThrowIfGone(worker, label, first, RunTimeout(count), $"with {state}");
                await Task.Delay(5);
            }

            elapsed = Stopwatch.GetElapsedTime(first, done.Value);
            finished = withResults ? Math.Min(state.Results, count) : count - state.Queued - (state.Unacked ?? 0);
            string end;
            if (finished < count)
            {
                caveat = string.Create(CultureInfo.InvariantCulture,
                    $"stopped after {limit.TotalSeconds:0} s with {finished:#,0} of {count:#,0} tasks {(withResults ? "with a result stored" : "taken off the queue")}: the rate over those");
                end = "stopped";
            }
            else
            {
                end = await probe.ConfirmEmptyAsync(s_firstMessageTimeout);
            }

            Progress.Say(string.Create(CultureInfo.InvariantCulture,
                $"{probe.Transport}: {label}, drain {(withResults ? "with" : "without")} results: first message taken {Stopwatch.GetElapsedTime(launched, first).TotalMilliseconds:0} ms after start, then {elapsed.TotalMilliseconds:0} ms; {state}; {end}"));
        }
        finally
        {
            await StopAllAsync([worker]);
        }

        long stored = (await probe.StateAsync()).Results;
        if (withResults)
        {
            // A stopped drain has fewer: those there are are read all the same.
            await probe.VerifyResultsAsync(caveat is null ? count : (int)stored);
        }
        else if (stored > 0)
        {
            Progress.Say($"{probe.Transport}: {label} stored {stored} results for ignore_result messages");
        }

        return new Measured(finished / elapsed.TotalSeconds, caveat);
    }

    private static bool IsDrained(DrainState state, int count, bool withResults) =>
        withResults ? state.Results >= count : state is { Queued: 0, Unacked: null or 0 };

    private static async Task RestoreForDrainAsync(IBrokerProbe probe, string name, int count, bool checkCount = true)
    {
        await probe.ResetAsync();
        await probe.RestoreAsync(name);
        if (!checkCount)
        {
            return;
        }

        long queued = await probe.QueuedAsync();
        if (queued != count)
        {
            throw new InvalidOperationException($"{queued} messages queued after the restore, not {count}");
        }
    }

    private static void ThrowIfGone(WorkerProcess worker, string label, long since, TimeSpan timeout, string what)
    {
        if (worker.HasExited)
        {
            throw new InvalidOperationException($"{label} exited {what}: {worker.Tail}");
        }

        if (Stopwatch.GetElapsedTime(since) > timeout)
        {
            throw new TimeoutException($"{label}: {timeout.TotalSeconds:0} s {what}; its output: {worker.Tail}");
        }
    }

    /// <summary>Issue 12's goal: 15x Celery prefork on Redis; on RabbitMQ the goal is only to be no slower than before.</summary>
    private static Goal? RatioGoal(string transport) => transport == "redis" ? Goal.Min(15) : null;
}
