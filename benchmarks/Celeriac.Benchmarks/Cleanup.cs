using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Celeriac.Benchmarks;

/// <summary>
/// What the benchmark started and has not stopped yet (broker servers, worker processes, Python scripts), undone
/// on Ctrl+C, SIGTERM or SIGHUP before the benchmark exits, newest first. The normal path stops each one itself and
/// disposes its registration; on a signal the benchmark undoes what is left and exits with 128 + the signal number.
/// </summary>
internal static class Cleanup
{
    private static readonly TimeSpan s_undoTimeout = TimeSpan.FromSeconds(20);
    private static readonly ConcurrentDictionary<long, (string What, Func<ValueTask> Undo)> s_pending = new();
    private static readonly List<PosixSignalRegistration> s_signals = [];
    private static readonly CancellationTokenSource s_stop = new();
    private static long s_next;
    private static int s_stopping;

    /// <summary>Cancelled on a signal, before what is registered is undone: for a start that takes a while (a RabbitMQ node).</summary>
    public static CancellationToken Stopping => s_stop.Token;

    /// <summary>Undoes what is left on a signal from now on.</summary>
    public static void InstallSignalHandlers()
    {
        foreach ((PosixSignal signal, int code) in ((PosixSignal, int)[])[(PosixSignal.SIGINT, 130), (PosixSignal.SIGTERM, 143), (PosixSignal.SIGHUP, 129)])
        {
            s_signals.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true; // the benchmark exits below, once what it started is stopped
                if (Interlocked.Exchange(ref s_stopping, 1) == 0)
                {
                    Progress.Say($"{context.Signal}: stopping the {s_pending.Count} server(s) and process(es) the benchmark started, then exiting");
                    s_stop.Cancel();
                    UndoAll();
                    Environment.Exit(code);
                }
            }));
        }
    }

    /// <summary>
    /// Registers how to undo a start (kill a process, stop a server); dispose the result once it is undone the
    /// normal way. While the benchmark is stopping on a signal, it is undone at once.
    /// </summary>
    public static IDisposable Register(string what, Func<ValueTask> undo)
    {
        long id = Interlocked.Increment(ref s_next);
        s_pending[id] = (what, undo);
        if (Volatile.Read(ref s_stopping) != 0)
        {
            UndoAll();
        }

        return new Registration(id);
    }

    /// <summary>Undoes whatever is still registered (the last resort when the benchmark ends with something left).</summary>
    public static void UndoAll()
    {
        foreach (long id in s_pending.Keys.Order().Reverse())
        {
            if (!s_pending.TryRemove(id, out var entry))
            {
                continue;
            }

            try
            {
                entry.Undo().AsTask().Wait(s_undoTimeout);
            }
            catch (Exception ex)
            {
                Progress.Say($"could not stop {entry.What}: {ex.GetBaseException().Message}");
            }
        }
    }

    private sealed class Registration(long id) : IDisposable
    {
        public void Dispose() => s_pending.TryRemove(id, out _);
    }
}
