using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;
using Celeriac.Cli.Commands;

namespace Celeriac.Cli;

/// <summary>
/// The <c>celeriac</c> command line (<c>worker</c>, <c>call</c>, <c>result</c>, <c>purge</c>, <c>inspect</c>, <c>control</c>, <c>status</c>, <c>events</c>, <c>report</c>), hostable in an app:
/// <c>return await CeleriacCli.RunAsync(args, app);</c> in <c>Program.cs</c> makes <c>dotnet run -- worker -c 4</c>
/// run a worker with that app's tasks.
/// </summary>
public static class CeleriacCli
{
    /// <summary>
    /// Runs the command line and returns its exit code (see <see cref="ExitCodes"/>). With <paramref name="app"/>,
    /// its options are the code defaults; <c>appsettings.json</c>, <c>CELERIAC_*</c> and the flags are applied on
    /// top before first use, and it is not disposed. Without one, an app is created with <c>CeleriacApp.Create()</c>.
    /// Cancelling <paramref name="ct"/> is a warm shutdown of a running worker.
    /// </summary>
    public static Task<int> RunAsync(string[] args, CeleriacApp? app = null, CancellationToken ct = default) =>
        RunAsync(args, app, Console.In, Console.Out, Console.Error, ct);

    /// <summary>The version printed by <c>--version</c>: Celeriac's informational version.</summary>
    public static string Version =>
        typeof(CeleriacApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(CeleriacApp).Assembly.GetName().Version?.ToString()
        ?? "0.0.0";

    /// <summary>The seam for tests and hosts: the same, on given streams.</summary>
    internal static async Task<int> RunAsync(string[] args, CeleriacApp? app, TextReader stdin, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(args);
        TextWriter output = TextWriter.Synchronized(stdout);
        TextWriter error = TextWriter.Synchronized(stderr);
        var context = new CliContext(app, stdin, output, error);
        try
        {
            RootCommand root = CeleriacCommandDefinition.Create(context);
            ParseResult parse = root.Parse(args);
            if (parse.Action is ParseErrorAction)
            {
                // One line, not System.CommandLine's error list followed by the whole help.
                string first = parse.UnmatchedTokens.Count > 0
                    ? $"Unrecognized command or option '{parse.UnmatchedTokens[0]}'"
                    : parse.Errors.Count > 0 ? parse.Errors[0].Message : "Invalid command line";
                context.WriteError($"Error: {first.TrimEnd('.')}. See --help.");
                return ExitCodes.Usage;
            }

            var invocation = new InvocationConfiguration
            {
                Output = output,
                Error = error,
                EnableDefaultExceptionHandler = false,

                // The worker handles SIGINT/SIGTERM itself (warm, then cold shutdown).
                ProcessTerminationTimeout = null,
            };
            return await parse.InvokeAsync(invocation, ct).ConfigureAwait(false);
        }
        catch (CliUsageException ex)
        {
            context.WriteError("Error: " + ex.Message);
            return ExitCodes.Usage;
        }
        catch (CeleriacConfigurationException ex)
        {
            context.WriteError("Error: " + ex.Message);
            return ExitCodes.Usage;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            context.WriteError("Error: cancelled.");
            return ExitCodes.Failure;
        }
#pragma warning disable CA1031 // The command line reports any failure as one line and an exit code, never a stack trace.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            context.WriteError($"Error: {ex.GetType().Name}: {ex.Message}");
            return ExitCodes.Failure;
        }
        finally
        {
            await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            await error.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }
}
