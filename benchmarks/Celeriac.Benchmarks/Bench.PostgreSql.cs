using System.Diagnostics;
using System.Globalization;
using Celeriac.Results;
using Celeriac.TestServers;
using Celeriac.Transport;
using Npgsql;

namespace Celeriac.Benchmarks;

/// <summary>
/// PostgreSQL: the same figures as SQLite's on a server the benchmark starts (initdb + postgres on a free loopback
/// port, a database per run), results in a SQLite file beside it, and an idle worker's CPU.
/// </summary>
internal static partial class Bench
{
    private static async Task PostgreSqlAsync(BenchOptions o, Report report)
    {
        const string T = "postgresql";
        Progress.Say("postgresql: starting a server");
        await using PostgresServer server = await PostgresServer.StartAsync();
        await MeasureAsync(report, T, "publish", "tasks/s", null, $"{Inflight} in flight", async () =>
        {
            await using CeleriacApp app = NewApp(server.Url(await server.CreateDatabaseAsync()), "disabled://");
            return await PublishRateAsync(app, o.Count);
        });

        string workers = string.Create(CultureInfo.InvariantCulture, $"{o.Workers} worker processes, concurrency {o.EffectiveConcurrency} each");
        await MeasureAsync(report, T, "drain_with_results", "tasks/s", null, workers + ", results in a SQLite file", () => PostgreSqlDrainAsync(o, server, ignoreResult: false));
        await MeasureAsync(report, T, "drain_without_results", "tasks/s", null, workers, () => PostgreSqlDrainAsync(o, server, ignoreResult: true));

        double[]? rtt = null;
        string rttNote = $"{o.RttSamples} sequential after {RttWarmup} warm-up, 1 worker process, results in a SQLite file";
        await MeasureAsync(report, T, "rtt_p50", "ms", null, rttNote, async () =>
        {
            using var dir = new TempDir();
            string url = server.Url(await server.CreateDatabaseAsync());
            string results = dir.SqliteUrl("results.db");
            List<WorkerProcess> worker = await WorkerProcess.StartManyAsync(dir.Path, url, 1, s_readyTimeout, [.. s_workerArgs, "--result-backend", results]);
            try
            {
                await using CeleriacApp app = NewApp(url, results);
                rtt = await RoundTripsAsync(app, o.RttSamples);
            }
            finally
            {
                await StopAllAsync(worker);
            }

            return Percentile(rtt, 0.50);
        });
        RecordP99(report, T, rtt, rttNote);

        long cpuTicks = 0;
        await MeasureAsync(report, T, "worker_idle_cpu", "% of one core", Goal.Below(1), "from 10 s to 30 s idle, default options (a heartbeat event every 2 s)", async () =>
        {
            using var dir = new TempDir();
            string url = server.Url(await server.CreateDatabaseAsync());
            List<WorkerProcess> one = await WorkerProcess.StartManyAsync(dir.Path, url, 1, s_readyTimeout);
            try
            {
                WorkerProcess w = one[0];
                Progress.Say("postgresql idle worker: measuring CPU from 10 s to 30 s idle");
                await Task.Delay(TimeSpan.FromSeconds(10));
                long ticks0 = w.ReadCpuTicks();
                long start = Stopwatch.GetTimestamp();
                await Task.Delay(TimeSpan.FromSeconds(20));
                cpuTicks = w.ReadCpuTicks() - ticks0;
                return Math.Round(cpuTicks / 100.0 / Stopwatch.GetElapsedTime(start).TotalSeconds * 100.0, 1);
            }
            finally
            {
                await StopAllAsync(one);
            }
        });
        Progress.Say(string.Create(CultureInfo.InvariantCulture, $"postgresql idle worker: {cpuTicks} ticks of 10 ms over 20 s (default options: a heartbeat event every 2 s)"));
    }

    /// <summary>
    /// Starts the worker processes, waits until each is ready, then publishes the whole queue in one statement and times
    /// the workers: with results to the latest <c>date_done</c>, without to the moment no message row is left.
    /// </summary>
    private static async Task<double> PostgreSqlDrainAsync(BenchOptions o, PostgresServer server, bool ignoreResult)
    {
        int count = o.Count;
        using var dir = new TempDir();
        string database = await server.CreateDatabaseAsync();
        string url = server.Url(database);
        string results = dir.SqliteUrl("results.db");
        TimeSpan timeout = RunTimeout(count);
        List<WorkerProcess> workers = await WorkerProcess.StartManyAsync(dir.Path, url, o.Workers, s_readyTimeout, [.. s_workerArgs, "--result-backend", results]);
        try
        {
            await using CeleriacApp app = NewApp(url, results);
            List<TransportMessage> messages = BuildMessages(app, count, ignoreResult, out string[] ids);
            ITransport transport = app.Transport;
            IResultBackend backend = app.ResultBackend;
            await transport.DeclareQueueAsync(new QueueDeclaration(BenchTasks.Queue, BenchTasks.Queue, BenchTasks.Queue));
            await using var counter = new NpgsqlConnection(server.ConnectionString(database));
            await counter.OpenAsync();
            await using var rows = new NpgsqlCommand("SELECT count(*) FROM celeriac_messages", counter);

            await transport.PublishAsync("", BenchTasks.Queue, messages);
            DateTimeOffset published = TimeProvider.System.GetUtcNow();
            long start = Stopwatch.GetTimestamp();

            long left;
            while ((left = (long)(await rows.ExecuteScalarAsync())!) > 0)
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
}
