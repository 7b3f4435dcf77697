using System.CommandLine;
using System.Reflection;
using System.Runtime.InteropServices;
using Celeriac.Worker;
using Microsoft.Extensions.Logging;

namespace Celeriac.Cli.Commands.Worker;

/// <summary><c>celeriac worker</c>: prints the banner and runs a <see cref="CeleriacWorker"/> until a signal stops it.</summary>
internal static class WorkerCommand
{
    public static async Task<int> RunAsync(CliContext context, WorkerCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        LogLevel level = definition.GetLogLevel(parse);
        List<string> queues = CommonOptions.SplitQueues(parse.GetValue(definition.QueuesOption));
        CliSession session = context.Open(parse, o =>
        {
            if (queues.Count > 0)
            {
                o.Queues.Clear();
                foreach (string q in queues)
                {
                    o.Queues.Add(q);
                }
            }

            if (parse.GetValue(definition.ConcurrencyOption) is { } concurrency)
            {
                o.Concurrency = concurrency;
            }

            if (parse.GetValue(definition.PrefetchMultiplierOption) is { } prefetch)
            {
                o.PrefetchMultiplier = prefetch;
            }

            if (parse.GetValue(definition.DisablePrefetchOption))
            {
                o.DisablePrefetch = true;
            }

            if (parse.GetValue(definition.AcksLateOption))
            {
                o.AcksLate = true;
            }

            if (parse.GetValue(definition.StateDbOption) is { } stateDb)
            {
                o.StateDb = stateDb;
            }

            if (parse.GetValue(definition.PoolOption) is { } pool)
            {
                o.Pool = pool;
            }

            if (parse.GetValue(definition.AutoscaleOption) is { } autoscale)
            {
                o.Autoscale = autoscale;
            }

            if (parse.GetValue(definition.SoftShutdownTimeoutOption) is { } soft)
            {
                o.SoftShutdownTimeout = TimeSpan.FromSeconds(soft);
            }

            if (parse.GetValue(definition.MaxTasksPerChildOption) is { } maxTasks)
            {
                o.MaxTasksPerChild = maxTasks;
            }

            if (parse.GetValue(definition.MaxMemoryPerChildOption) is { } maxMemory)
            {
                o.MaxMemoryPerChild = maxMemory;
            }

            if (parse.GetValue(definition.TaskEventsOption))
            {
                o.TaskEvents = true;
            }

            if (parse.GetValue(definition.ScheduleOption) is { } schedule)
            {
                o.BeatScheduleUrl = schedule;
            }

            if (parse.GetValue(definition.WithoutMingleOption))
            {
                o.WithoutMingle = true;
            }

            if (parse.GetValue(definition.WithoutHeartbeatOption))
            {
                o.WithoutHeartbeat = true;
            }

            if (parse.GetValue(definition.HeartbeatIntervalOption) is { } interval)
            {
                o.HeartbeatInterval = TimeSpan.FromSeconds(interval);
            }

            if (parse.GetValue(definition.HostnameOption) is { } hostname)
            {
                o.NodeName = ExpandHostname(hostname);
            }
        }, level);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);

        CeleriacApp app = session.App;
        string appName = Assembly.GetEntryAssembly()?.GetName().Name ?? "celeriac";
        if (parse.GetValue(definition.AppOption) is { } spec)
        {
            Assembly assembly = TaskAssemblyLoader.Load(spec);
            TaskAssemblyLoader.Register(app, assembly);
            appName = assembly.GetName().Name ?? spec;
        }

        if (PoolChild.IsCurrentProcess)
        {
            // Started by a prefork pool: the same app, serving its parent instead of the broker.
            return await PoolChild.RunAsync(app, ct).ConfigureAwait(false);
        }

        // Open both connections now, so that a bad URL or a missing provider is reported before the banner.
        _ = app.Transport;
        _ = app.ResultBackend;
        var worker = new CeleriacWorker(app);

        using var stop = new CancellationTokenSource();
        using var abort = new CancellationTokenSource();
        var shutdown = new Shutdown(context.Error, stop, abort);
        using CancellationTokenRegistration onHostStop = ct.Register(static s => ((Shutdown)s!).Warm(), shutdown);

        // Handlers go in before the banner: a SIGTERM that follows it must be a warm shutdown, not the default kill.
        List<PosixSignalRegistration> signals = [];
        TryRegister(signals, PosixSignal.SIGTERM, shutdown.OnTerminate);
        TryRegister(signals, PosixSignal.SIGINT, shutdown.OnInterrupt);
        TryRegister(signals, PosixSignal.SIGQUIT, shutdown.OnQuit);
        try
        {
            string banner = WorkerBanner.Build(new WorkerBanner.Info(
                worker.NodeName,
                CeleriacCli.Version.Split('+')[0],
                appName,
                UrlText.Mask(app.Options.BrokerUrl),
                UrlText.Mask(app.EffectiveResultBackendUrl),
                worker.Concurrency,
                worker.Pool.Name,
                worker.Queues,
                app.Tasks.Names,
                app.Options.TimeProvider.GetLocalNow(),
                app.Options.TaskEvents));
            await context.Out.WriteLineAsync(banner.AsMemory(), CancellationToken.None).ConfigureAwait(false);
            await context.Out.FlushAsync(CancellationToken.None).ConfigureAwait(false);

            // -B: beat beside the worker, stopped with its warm stop (releasing the lease for another -B worker).
            Task beat = parse.GetValue(definition.BeatOption) ? new Celeriac.Beat.CeleriacBeat(app).RunAsync(stop.Token) : Task.CompletedTask;
            try
            {
                await worker.RunAsync(stop.Token, abort.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (abort.IsCancellationRequested || stop.IsCancellationRequested)
            {
                // Stopped before it consumed: nothing was taken, so nothing is lost.
            }
            finally
            {
                await stop.CancelAsync().ConfigureAwait(false);
                await beat.ConfigureAwait(false);
            }

            return abort.IsCancellationRequested ? ExitCodes.Failure : ExitCodes.Ok;
        }
        finally
        {
            foreach (PosixSignalRegistration signal in signals)
            {
                signal.Dispose();
            }
        }
    }

    private static void TryRegister(List<PosixSignalRegistration> signals, PosixSignal signal, Action<PosixSignalContext> handler)
    {
        try
        {
            signals.Add(PosixSignalRegistration.Create(signal, handler));
        }
        catch (PlatformNotSupportedException)
        {
            // A signal this platform lacks (SIGQUIT on Windows): the others and the host's token still stop the worker.
        }
    }

    /// <summary>Celery's node name variables: %h the host name, %n its first label, %d its domain.</summary>
    internal static string ExpandHostname(string name)
    {
        string host = System.Net.Dns.GetHostName();
        int dot = host.IndexOf('.', StringComparison.Ordinal);
        return name
            .Replace("%n", dot < 0 ? host : host[..dot], StringComparison.Ordinal)
            .Replace("%d", dot < 0 ? "" : host[(dot + 1)..], StringComparison.Ordinal)
            .Replace("%h", host, StringComparison.Ordinal);
    }

    /// <summary>Turns signals into the worker's two tokens, as Celery's handlers do.</summary>
    private sealed class Shutdown(TextWriter error, CancellationTokenSource stop, CancellationTokenSource abort)
    {
        private int _interrupts;
        private volatile bool _cold;
        private int _warm;

        public void Say(string message)
        {
            error.WriteLine();
            error.WriteLine(message);
            error.Flush();
        }

        public void OnTerminate(PosixSignalContext signal)
        {
            signal.Cancel = true;
            Warm();
        }

        public void OnInterrupt(PosixSignalContext signal)
        {
            signal.Cancel = true;
            if (Interlocked.Increment(ref _interrupts) == 1)
            {
                Say("worker: Hitting Ctrl+C again will terminate all running tasks!");
                Warm();
            }
            else
            {
                Cold();
            }
        }

        public void OnQuit(PosixSignalContext signal)
        {
            signal.Cancel = true;
            Cold();
        }

        /// <summary>
        /// Warm shutdown: says so, then cancels <c>stop</c>. The message comes first because cancelling may run the
        /// whole shutdown inline; cancelling on the thread pool keeps the signal thread free.
        /// </summary>
        public void Warm()
        {
            if (_cold || Interlocked.Exchange(ref _warm, 1) == 1)
            {
                return;
            }

            Say("worker: Warm shutdown (MainProcess)");
            try
            {
                _ = stop.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // The worker already ended.
            }
        }

        private void Cold()
        {
            if (_cold)
            {
                return;
            }

            _cold = true;
            Say("worker: Cold shutdown (MainProcess)");
            try
            {
                _ = abort.CancelAsync();
                _ = stop.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // The worker already ended.
            }
        }
    }
}
