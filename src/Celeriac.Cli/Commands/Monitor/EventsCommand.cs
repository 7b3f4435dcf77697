using System.CommandLine;
using System.Runtime.InteropServices;
using Celeriac.Events;
using Microsoft.Extensions.Logging;

namespace Celeriac.Cli.Commands.Monitor;

/// <summary><c>celeriac events</c>: runs the dump or the live view until Ctrl+C, SIGTERM, <c>q</c> or the host's token.</summary>
internal static class EventsCommand
{
    public static async Task<int> RunAsync(CliContext context, EventsCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        bool dump = parse.GetValue(definition.DumpOption);
        TimeSpan refresh = TimeSpan.FromSeconds(Math.Max(0.05, parse.GetValue(definition.FrequencyOption) ?? 1.0));
        // Warnings on stderr would tear the live view's screen; the dump's stdout is apart from them.
        CliSession session = context.Open(parse, logLevel: dump ? LogLevel.Warning : LogLevel.Error);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);

        // A monitor has nothing to finish: the first Ctrl+C or SIGTERM ends it, with exit code 0.
        using var signals = new StopSignals(stop);
        if (dump)
        {
            await DumpAsync(context, session.App, stop.Token).ConfigureAwait(false);
        }
        else
        {
            using var monitor = new EventsMonitor(context, session.App, refresh);
            await monitor.RunAsync(stop).ConfigureAwait(false);
        }

        return ExitCodes.Ok;
    }

    /// <summary>Celery's <c>evdump</c>: a first line, then one line per event, each flushed so that a pipe sees it at once.</summary>
    private static async Task DumpAsync(CliContext context, CeleriacApp app, CancellationToken stop)
    {
        var dumper = new EventDumper();
        await SayAsync(context, "-> evdump: starting capture...", stop).ConfigureAwait(false);
        try
        {
            await foreach (CeleryEvent e in new EventReceiver(app).ReadAsync(stop).ConfigureAwait(false))
            {
                await SayAsync(context, dumper.Format(e), stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopped between two events.
        }
    }

    private static async Task SayAsync(CliContext context, string line, CancellationToken stop)
    {
        await context.Out.WriteLineAsync(line.AsMemory(), CancellationToken.None).ConfigureAwait(false);
        await context.Out.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        stop.ThrowIfCancellationRequested();
    }
}
