using System.CommandLine;
using System.Globalization;

namespace Celeriac.Cli.Commands.Purge;

/// <summary><c>celeriac purge</c>: confirms (unless <c>-f</c>), purges, and prints how much.</summary>
internal static class PurgeCommand
{
    public static async Task<int> RunAsync(CliContext context, PurgeCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        CliSession session = context.Open(parse);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        CeleriacApp app = session.App;
        List<string> queues = CommonOptions.SplitQueues(parse.GetValue(definition.QueuesOption));
        if (queues.Count == 0)
        {
            queues = [.. app.Options.EffectiveQueues];
        }

        if (!parse.GetValue(definition.ForceOption))
        {
            await context.Out.WriteAsync(string.Create(CultureInfo.InvariantCulture,
                $"WARNING: This will remove all tasks from {Plural(queues.Count, "queue")}: {string.Join(", ", queues.Order(StringComparer.Ordinal))}.{Environment.NewLine}         There is no undo for this operation!{Environment.NewLine}{Environment.NewLine}(to skip this prompt use the -f option){Environment.NewLine}Are you sure you want to delete all tasks? [y/N]: ").AsMemory(), ct).ConfigureAwait(false);
            await context.Out.FlushAsync(ct).ConfigureAwait(false);
            string? answer = await context.In.ReadLineAsync(ct).ConfigureAwait(false);
            if (answer?.Trim().ToUpperInvariant() is not ("Y" or "YES"))
            {
                context.WriteError("Aborted!");
                return ExitCodes.Failure;
            }
        }

        long purged = 0;
        foreach (string queue in queues)
        {
            purged += await app.Transport.PurgeAsync(queue, ct).ConfigureAwait(false);
        }

        await context.Out.WriteLineAsync($"Purged {Plural(purged, "message")} from {Plural(queues.Count, "queue")}".AsMemory(), ct).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    private static string Plural(long n, string noun) =>
        string.Create(CultureInfo.InvariantCulture, $"{n} {noun}{(n == 1 ? "" : "s")}");
}
