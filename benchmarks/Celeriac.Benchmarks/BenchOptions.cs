using System.Globalization;

namespace Celeriac.Benchmarks;

/// <summary>The command line: <c>[--transport memory|sqlite|redis|rabbitmq|postgresql|all] [--count N] [--rtt-samples N] [--workers N] [--concurrency N] [--pool P] [--disable-prefetch] [--events] [--aot-worker PATH] [--only FIGURE,...] [--markdown]</c>.</summary>
internal sealed class BenchOptions
{
    public const string Usage = """
        Usage: dotnet run -c Release --project benchmarks/Celeriac.Benchmarks -- [options]
          --transport memory|sqlite|redis|rabbitmq|postgresql|all
                                          which transports to measure (default: all)
          --count N                       tasks per publish/drain run (default: 20000)
          --rtt-samples N                 sequential round trips after a warm-up of 100 (default: 1000)
          --workers N                     worker processes for the SQLite drains (default: 2)
          --concurrency N                 worker concurrency, in-process and -c of the processes (default: the core count)
          --pool async|threads|prefork|solo
                                          -P of the Celeriac worker processes (default: theirs, async); the pool
                                          figures on redis set their own
          --disable-prefetch              Celeriac worker processes run with prefetch off (Celery's stay as they are)
          --events                        also drain with task events on (-E: memory in-process, sqlite and redis
                                          worker processes, and Celery prefork -c 2 -E on redis), right after each
                                          drain without, and report each with -E ÷ without
          --telemetry                     also drain memory with a listener on Celeriac's traces and metrics (an
                                          ActivityListener recording every span, a MeterListener on every instrument),
                                          right after each drain without, and report each with ÷ without
          --aot-worker PATH               also drain redis with samples/AotWorker published with NativeAOT at PATH
                                          (scripts/bench.sh publishes it and passes this): drain_with_results_aot
          --only FIGURE[,FIGURE]          measure only these figures (e.g. drain_with_results), to repeat one quickly;
                                          rtt_p99 comes with rtt_p50, worker_idle_cpu with worker_idle_rss
          --markdown                      also print the results as a markdown table after the JSON lines
        The worker process figures (idle RSS and CPU, boot to ready) run with the sqlite transport; postgresql starts
        its own server (initdb + postgres) and measures the same figures as sqlite plus an idle worker's CPU, with
        results in a SQLite file (the PostgreSQL broker has no result backend of its own).
        redis and rabbitmq each start their own server (redis-server; rabbitmq-server, about 8 s to start) and
        measure Python Celery 5.2 (/usr/bin/python3) in the same run: prefork -c 2 and threads -c 8 against one
        Celeriac worker process with default options. redis also measures the pool figures: Celeriac -P prefork -c 2
        against Celery prefork -c 2 on no-op and CPU-bound tasks (count/10 of those), -P threads -c 8 and the
        default async pool -c 8 against Celery threads -c 8 on 50 ms blocking tasks (at most 400). Results: redis database 1 on redis; rpc:// (a message to
        the client's reply queue) on both sides on rabbitmq. A Celery drain still running after 60 s is stopped
        there and its rate is over what it did (marked * with a note under the table): Celery's threads pool runs
        tens of tasks a second on RabbitMQ. Ctrl+C stops every server and process the benchmark started.
        JSON lines (one per figure) go to stdout; progress and the table go to stderr.
        """;

    public bool Memory { get; private set; } = true;

    public bool Sqlite { get; private set; } = true;

    public bool Redis { get; private set; } = true;

    public bool RabbitMq { get; private set; } = true;

    public bool PostgreSql { get; private set; } = true;

    public int Count { get; private set; } = 20_000;

    public int RttSamples { get; private set; } = 1000;

    public int Workers { get; private set; } = 2;

    public int? Concurrency { get; private set; }

    public int EffectiveConcurrency => Concurrency ?? Environment.ProcessorCount;

    public string? Pool { get; private set; }

    public bool DisablePrefetch { get; private set; }

    public bool Events { get; private set; }

    public bool Telemetry { get; private set; }

    /// <summary>The NativeAOT-published <c>samples/AotWorker</c>, for the Redis drain by a NativeAOT worker.</summary>
    public string? AotWorker { get; private set; }

    /// <summary>Only these figures (e.g. <c>drain_with_results</c>), when --only is given; the rest are skipped.</summary>
    public IReadOnlyList<string>? Only { get; private set; }

    public bool Markdown { get; private set; }

    public bool Help { get; private set; }

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            switch (arg)
            {
                case "--transport":
                    string transport = Value(args, ref i);
                    (o.Memory, o.Sqlite, o.Redis, o.RabbitMq, o.PostgreSql) = transport switch
                    {
                        "memory" => (true, false, false, false, false),
                        "sqlite" => (false, true, false, false, false),
                        "redis" => (false, false, true, false, false),
                        "rabbitmq" => (false, false, false, true, false),
                        "postgresql" => (false, false, false, false, true),
                        "all" => (true, true, true, true, true),
                        _ => throw new ArgumentException($"--transport must be memory, sqlite, redis, rabbitmq, postgresql or all, not '{transport}'."),
                    };
                    break;
                case "--count":
                    o.Count = Positive(args, ref i, 1_000_000);
                    break;
                case "--rtt-samples":
                    o.RttSamples = Positive(args, ref i, 1_000_000);
                    break;
                case "--workers":
                    o.Workers = Positive(args, ref i, 64);
                    break;
                case "--concurrency":
                    o.Concurrency = Positive(args, ref i, 4096);
                    break;
                case "--pool":
                    string pool = Value(args, ref i);
                    o.Pool = pool is "async" or "threads" or "prefork" or "solo"
                        ? pool
                        : throw new ArgumentException($"--pool must be async, threads, prefork or solo, not '{pool}'.");
                    break;
                case "--disable-prefetch":
                    o.DisablePrefetch = true;
                    break;
                case "--telemetry":
                    o.Telemetry = true;
                    break;
                case "--events":
                    o.Events = true;
                    break;
                case "--aot-worker":
                    string aot = Value(args, ref i);
                    o.AotWorker = File.Exists(aot) ? Path.GetFullPath(aot) : throw new ArgumentException($"--aot-worker: no file '{aot}'.");
                    break;
                case "--only":
                    o.Only = [.. Value(args, ref i).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
                    break;
                case "--markdown":
                    o.Markdown = true;
                    break;
                case "--help" or "-h":
                    o.Help = true;
                    break;
                default:
                    throw new ArgumentException($"unknown argument '{arg}'.");
            }
        }

        return o;
    }

    private static string Value(string[] args, ref int i)
    {
        if (i + 1 >= args.Length)
        {
            throw new ArgumentException($"{args[i]} needs a value.");
        }

        return args[++i];
    }

    private static int Positive(string[] args, ref int i, int max)
    {
        string name = args[i];
        string text = Value(args, ref i);
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < 1 || value > max)
        {
            throw new ArgumentException($"{name} must be a whole number from 1 to {max}, not '{text}'.");
        }

        return value;
    }
}
