using Celeriac.Cli;

namespace Celeriac.Tests.Cli;

/// <summary>Runs the command line in-process on captured streams.</summary>
internal sealed record CliRun(int ExitCode, string Out, string Error)
{
    public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public static async Task<CliRun> RunAsync(string[] args, CeleriacApp? app = null, string stdin = "", CancellationToken ct = default)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var input = new StringReader(stdin);
        int code = await CeleriacCli.RunAsync(args, app, input, output, error, ct);
        return new CliRun(code, output.ToString(), error.ToString());
    }

    public static string NewBroker() => "memory://cli" + Guid.NewGuid().ToString("N");
}
