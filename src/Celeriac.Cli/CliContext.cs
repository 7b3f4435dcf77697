using System.CommandLine;
using Celeriac.Cli.Logging;
using Microsoft.Extensions.Logging;

namespace Celeriac.Cli;

/// <summary>What one run of the command line works with: the host's app (if any), the console streams, the global options.</summary>
internal sealed class CliContext(CeleriacApp? app, TextReader input, TextWriter output, TextWriter error)
{
    public TextReader In { get; } = input;

    public TextWriter Out { get; } = output;

    public TextWriter Error { get; } = error;

    public Option<string?> Broker { get; } = CommonOptions.Broker();

    public Option<string?> ResultBackend { get; } = CommonOptions.ResultBackend();

    /// <summary>
    /// The app to use, configured in Celery's order: defaults &lt; code (the host's app) &lt; appsettings.json &lt;
    /// <c>CELERIAC_*</c> &lt; command-line flags (the global ones, then <paramref name="flags"/>).
    /// </summary>
    public CliSession Open(ParseResult parse, Action<CeleriacOptions>? flags = null, LogLevel logLevel = LogLevel.Warning)
    {
        CeleriacApp target;
        bool owns;
        if (app is null)
        {
            target = CeleriacApp.Create();
            owns = true;
        }
        else
        {
            CeleriacSettings.Apply(app.Options);
            target = app;
            owns = false;
        }

        CeleriacOptions options = target.Options;
        if (parse.GetValue(Broker) is { } broker)
        {
            options.BrokerUrl = broker;
        }

        if (parse.GetValue(ResultBackend) is { } backend)
        {
            options.ResultBackend = backend;
        }

        flags?.Invoke(options);
        options.Validate();

        // A host that configured its own logging keeps it; otherwise log as Celery does, on stderr.
        ILoggerFactory? previous = options.LoggerFactory;
        ILoggerFactory? owned = null;
        if (previous is null)
        {
            owned = CliLogging.CreateFactory(logLevel, options.TimeProvider);
            options.LoggerFactory = owned;
        }

        return new CliSession(target, owns, owned, previous);
    }

    /// <summary>Writes one line to stderr, keeping it one line.</summary>
    public void WriteError(string message) => Error.WriteLine(OneLine(message));

    public static string OneLine(string text) =>
        text.ReplaceLineEndings(" ").Trim();
}
