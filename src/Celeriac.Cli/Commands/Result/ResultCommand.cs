using System.CommandLine;
using System.Globalization;
using System.Text;
using Celeriac.Results;

namespace Celeriac.Cli.Commands.Result;

/// <summary><c>celeriac result</c>: reads (or waits for) a result and reports it by output and exit code.</summary>
internal static class ResultCommand
{
    public static async Task<int> RunAsync(CliContext context, ResultCommandDefinition definition, ParseResult parse, CancellationToken ct)
    {
        string id = parse.GetValue(definition.IdArgument)!;
        double? wait = parse.GetValue(definition.WaitOption);
        CliSession session = context.Open(parse);
        await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable disposeSession = session.ConfigureAwait(false);
        AsyncResult result = session.App.AsyncResult(id);
        TaskResultMeta? meta;
        if (wait is { } seconds)
        {
            try
            {
                meta = await result.WaitAsync(TimeSpan.FromSeconds(seconds), ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                context.WriteError(string.Create(CultureInfo.InvariantCulture, $"Timeout: task {id} is not ready after {seconds}s (state {result.State})."));
                return ExitCodes.NotReady;
            }
        }
        else
        {
            meta = await result.RefreshAsync(ct).ConfigureAwait(false);
        }

        string state = meta?.Status ?? TaskStates.Pending;
        if (meta is not null && state == TaskStates.Success)
        {
            await context.Out.WriteLineAsync(Encoding.UTF8.GetString(meta.Result.Span).AsMemory(), ct).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        if (meta is not null && state is TaskStates.Failure or TaskStates.Revoked)
        {
            ExceptionInfo error = meta.Exception ?? new ExceptionInfo("Exception", state, null);
            context.WriteError($"{state}: {error.Type}: {error.Message}");
            return ExitCodes.Failure;
        }

        await context.Out.WriteLineAsync(state.AsMemory(), ct).ConfigureAwait(false);
        return ExitCodes.NotReady;
    }
}
