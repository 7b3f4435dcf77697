using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Celeriac.TestServers;

namespace Celeriac.Benchmarks;

/// <summary>
/// Redis: Celeriac and Python Celery 5.2 on one redis-server the benchmark starts (broker in database 0, results in
/// database 1). Every drain reads the same bytes: messages sent by a Python Celery client once, DUMPed, and RESTOREd
/// before each worker starts.
/// </summary>
internal static partial class Bench
{
    private const string CeleryClient = "redis/celery";
    private const string CeleryPrefork = "redis/celery-prefork-c2";
    private const string CeleryThreads = "redis/celery-threads-c8";
    private const int PreforkConcurrency = 2;
    private const int ThreadsConcurrency = 8;

    /// <summary>How long a worker may take from its start to the first message it takes off the queue.</summary>
    private static readonly TimeSpan s_firstMessageTimeout = TimeSpan.FromSeconds(30);

    private static async Task<Comparison> RedisAsync(BenchOptions o, Report report)
    {
        const string T = "redis";
        var comparison = new Comparison(report);
        const string Pub = "Celery: add.delay() loop, one Python process";
        comparison.Add("publish", "tasks/s", (T, "publish"), (CeleryClient, "publish"), (CeleryClient, "publish"), null,
            $"Celeriac: DelayAsync, {Inflight} in flight; {Pub}");
        comparison.Add("publish_sequential", "tasks/s", (T, "publish_sequential"), (CeleryClient, "publish"), (CeleryClient, "publish"), null,
            $"Celeriac: DelayAsync, 1 in flight; {Pub}");
        const string Drain = "Celery-sent queue, 1 worker process, first message taken to ";
        comparison.Add("drain_with_results", "tasks/s", (T, "drain_with_results"), (CeleryPrefork, "drain_with_results"), (CeleryThreads, "drain_with_results"), Goal.Min(10),
            Drain + "last result stored");
        comparison.Add("drain_without_results", "tasks/s", (T, "drain_without_results"), (CeleryPrefork, "drain_without_results"), (CeleryThreads, "drain_without_results"), null,
            Drain + "queue and unacked empty (ignore_result)");
        string rtt = $"{o.RttSamples} sequential after {RttWarmup} warm-up, each its own client and worker";
        comparison.Add("rtt_p50", "ms", (T, "rtt_p50"), (CeleryPrefork, "rtt_p50"), (CeleryThreads, "rtt_p50"), null, rtt);
        comparison.Add("rtt_p99", "ms", (T, "rtt_p99"), (CeleryPrefork, "rtt_p99"), (CeleryThreads, "rtt_p99"), null, rtt);

        RedisServer server;
        RedisProbe redis;
        try
        {
            server = await RedisServer.StartAsync();
        }
        catch (Exception ex)
        {
            report.Fail(T, "redis-server", "", $"{ex.GetType().Name}: {ex.Message}");
            return comparison;
        }

        await using (server)
        {
            try
            {
                redis = await RedisProbe.ConnectAsync(server.Port);
            }
            catch (Exception ex)
            {
                report.Fail(T, "redis-server", "", $"{ex.GetType().Name}: {ex.Message}");
                return comparison;
            }

            await using (redis)
            {
                Progress.Say($"redis: redis-server on 127.0.0.1:{server.Port}, broker {server.Url(RedisProbe.BrokerDb)}, results {server.Url(RedisProbe.BackendDb)}");
                await RedisRunAsync(o, report, server, redis);
            }
        }

        if (comparison.Ratio("drain_with_results", prefork: true) is { } ratio)
        {
            report.Add(T, "drain_with_results_vs_celery_prefork", ratio, "×", Goal.Min(10), "Celeriac ÷ Celery prefork -c 2");
        }

        return comparison;
    }

    private static async Task RedisRunAsync(BenchOptions o, Report report, RedisServer server, RedisProbe redis)
    {
        const string T = "redis";
        string broker = server.Url(RedisProbe.BrokerDb), backend = server.Url(RedisProbe.BackendDb);
        TimeSpan timeout = RunTimeout(o.Count);
        using var dir = new TempDir();
        string[] celeriacWorkerArgs = ["--result-backend", backend, .. s_workerArgs];
        WorkerProcess StartCeleriac() => WorkerProcess.Start(dir.Path, broker, "w1", celeriacWorkerArgs);
        WorkerProcess StartPrefork() => PythonCelery.StartWorker(broker, backend, "prefork", PreforkConcurrency);
        WorkerProcess StartThreads() => PythonCelery.StartWorker(broker, backend, "threads", ThreadsConcurrency);
        string count = o.Count.ToString(CultureInfo.InvariantCulture);

        // Publish: nothing consumes; the queue is emptied after each client.
        await redis.FlushAsync();
        await MeasureAsync(report, T, "publish", "tasks/s", null, $"{Inflight} in flight, results in redis db 1", async () =>
        {
            await using CeleriacApp app = NewRedisApp(broker, backend);
            return await PublishRateAsync(app, o.Count);
        });
        await redis.FlushAsync();
        await MeasureAsync(report, T, "publish_sequential", "tasks/s", null, "one in flight, results in redis db 1", async () =>
        {
            await using CeleriacApp app = NewRedisApp(broker, backend);
            return await PublishRateAsync(app, o.Count, inflight: 1);
        });
        await redis.FlushAsync();
        await MeasureAsync(report, CeleryClient, "publish", "tasks/s", null, "add.delay() loop in one Python process, 100 warm-up, results in redis db 1", async () =>
        {
            JsonElement json = await PythonCelery.RunScriptAsync("publish.py", broker, backend, timeout, "--count", count, "--time-limit", TimeLimit(timeout));
            return json.GetProperty("rate").GetDouble();
        });

        // The drains' messages, sent once by a Celery client (with and without ignore_result) and kept as DUMPs.
        RedisSnapshot? withResults = await PrefillAsync(redis, broker, backend, count, timeout, ignoreResult: false);
        RedisSnapshot? withoutResults = await PrefillAsync(redis, broker, backend, count, timeout, ignoreResult: true);
        foreach ((bool results, RedisSnapshot? filled) in ((bool, RedisSnapshot?)[])[(true, withResults), (false, withoutResults)])
        {
            string name = results ? "drain_with_results" : "drain_without_results";
            string note = results ? "from the first message taken to the last result stored" : "from the first message taken to queue and unacked empty";
            foreach ((string transport, string label, Func<WorkerProcess> start) in ((string, string, Func<WorkerProcess>)[])[
                (T, "Celeriac worker process (default options)", StartCeleriac),
                (CeleryPrefork, "Celery -P prefork -c 2", StartPrefork),
                (CeleryThreads, "Celery -P threads -c 8", StartThreads)])
            {
                await MeasureAsync(report, transport, name, "tasks/s", null, $"{label}, {note}", () =>
                    filled is null
                        ? throw new InvalidOperationException("the Celery client's prefill failed (see above)")
                        : RedisDrainAsync(redis, filled, o.Count, results, start, label));
            }
        }

        // Round trips: one worker at a time, its own client.
        await redis.FlushAsync();
        double[]? rtt = null;
        string rttNote = $"{o.RttSamples} sequential after {RttWarmup} warm-up, Celeriac client, 1 Celeriac worker process";
        await MeasureAsync(report, T, "rtt_p50", "ms", null, rttNote, async () =>
        {
            List<WorkerProcess> worker = await WorkerProcess.StartManyAsync(dir.Path, broker, 1, s_readyTimeout, celeriacWorkerArgs);
            try
            {
                await using CeleriacApp app = NewRedisApp(broker, backend);
                rtt = await RoundTripsAsync(app, o.RttSamples);
            }
            finally
            {
                await StopAllAsync(worker);
            }

            return Percentile(rtt, 0.50);
        });
        RecordP99(report, T, rtt, rttNote);

        foreach ((string transport, string label, Func<WorkerProcess> start) in ((string, string, Func<WorkerProcess>)[])[
            (CeleryPrefork, "Celery -P prefork -c 2", StartPrefork),
            (CeleryThreads, "Celery -P threads -c 8", StartThreads)])
        {
            await redis.FlushAsync();
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

        await redis.FlushAsync();
    }

    private static CeleriacApp NewRedisApp(string broker, string backend)
    {
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker, ResultBackend = backend, Concurrency = s_concurrency });
        app.Task(BenchTasks.Add, (int x, int y) => x + y);
        return app;
    }

    /// <summary>A Python script's own time limit: a little under the harness's, so that the script says how far it got.</summary>
    private static string TimeLimit(TimeSpan timeout) => (timeout.TotalSeconds * 0.9).ToString("0", CultureInfo.InvariantCulture);

    /// <summary>A Python Celery client sends <paramref name="count"/> tasks.add(i, i); the queue is DUMPed, then emptied.</summary>
    private static async Task<RedisSnapshot?> PrefillAsync(RedisProbe redis, string broker, string backend, string count, TimeSpan timeout, bool ignoreResult)
    {
        try
        {
            await redis.FlushAsync();
            string[] args = ["--count", count, "--time-limit", TimeLimit(timeout), .. ignoreResult ? (string[])["--ignore-result"] : []];
            JsonElement json = await PythonCelery.RunScriptAsync("prefill.py", broker, backend, timeout, args);
            long queued = await redis.QueuedAsync();
            RedisSnapshot snapshot = await redis.SnapshotAsync();
            await redis.FlushAsync();
            Progress.Say(string.Create(CultureInfo.InvariantCulture,
                $"redis: a Celery client sent {queued} tasks.add{(ignoreResult ? " with ignore_result" : "")} in {json.GetProperty("seconds").GetDouble():0.0} s ({snapshot.Keys.Count} keys DUMPed: {string.Join(", ", snapshot.Keys.Select(k => k.Key.ToString()))})"));
            return snapshot;
        }
        catch (Exception ex)
        {
            Progress.Say($"redis: prefill{(ignoreResult ? " (ignore_result)" : "")} failed: {ex.GetType().Name}: {ex.Message}");
            return null;
        }
    }

    /// <summary>
    /// RESTOREs the pre-filled queue, starts a worker and times it from the first message it takes (the queue's length
    /// drops) to, with results, <paramref name="count"/> results stored, or without, queue lists and <c>unacked</c>
    /// empty on two polls in a row (the first one's time counts).
    /// </summary>
    private static async Task<double> RedisDrainAsync(RedisProbe redis, RedisSnapshot filled, int count, bool withResults, Func<WorkerProcess> start, string label)
    {
        await redis.FlushAsync();
        await redis.RestoreAsync(filled);
        long queued = await redis.QueuedAsync();
        if (queued != count)
        {
            throw new InvalidOperationException($"{queued} messages queued after RESTORE, not {count}");
        }

        TimeSpan timeout = RunTimeout(count);
        long launched = Stopwatch.GetTimestamp();
        WorkerProcess worker = start();
        TimeSpan elapsed;
        try
        {
            while (await redis.QueuedAsync() >= count)
            {
                ThrowIfGone(worker, label, launched, s_firstMessageTimeout, "before taking a message");
                await Task.Delay(2);
            }

            long first = Stopwatch.GetTimestamp();
            long? done = null;
            DrainState state;
            while (true)
            {
                state = await redis.StateAsync();
                long now = Stopwatch.GetTimestamp();
                bool finished = withResults ? state.Results >= count : state.Queued == 0 && state.Unacked == 0;
                if (!finished)
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

                ThrowIfGone(worker, label, first, timeout, $"with {state}");
                await Task.Delay(5);
            }

            elapsed = Stopwatch.GetElapsedTime(first, done.Value);
            Progress.Say(string.Create(CultureInfo.InvariantCulture,
                $"redis: {label}, drain {(withResults ? "with" : "without")} results: first message taken {Stopwatch.GetElapsedTime(launched, first).TotalMilliseconds:0} ms after start, then {elapsed.TotalMilliseconds:0} ms; {state}"));
        }
        finally
        {
            await StopAllAsync([worker]);
        }

        if (withResults)
        {
            await redis.VerifyResultsAsync(count);
        }
        else if ((await redis.StateAsync()).Results is > 0 and long stored)
        {
            Progress.Say($"redis: {label} stored {stored} results for ignore_result messages");
        }

        return count / elapsed.TotalSeconds;
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
}
