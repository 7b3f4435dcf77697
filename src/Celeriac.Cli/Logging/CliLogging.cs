using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Celeriac.Cli.Logging;

/// <summary>The console logging of the <c>celeriac</c> command: Celery's line format, on stderr as Celery's.</summary>
public static class CliLogging
{
    /// <summary>Parses a Celery log level name (<c>debug</c>, <c>info</c>, <c>warning</c>, <c>error</c>, <c>critical</c>; any case; <c>warn</c> and <c>fatal</c> too).</summary>
    public static bool TryParseLevel(string? text, out LogLevel level)
    {
        level = (text ?? "").Trim().ToUpperInvariant() switch
        {
            "DEBUG" => LogLevel.Debug,
            "INFO" => LogLevel.Information,
            "WARNING" or "WARN" => LogLevel.Warning,
            "ERROR" => LogLevel.Error,
            "CRITICAL" or "FATAL" => LogLevel.Critical,
            _ => LogLevel.None,
        };
        return level != LogLevel.None;
    }

    /// <summary>A logger factory writing Celery-formatted lines to the console at or above <paramref name="minimum"/>.</summary>
    public static ILoggerFactory CreateFactory(LogLevel minimum, TimeProvider? timeProvider = null) =>
        LoggerFactory.Create(builder => builder
            .SetMinimumLevel(minimum)

            // The worker's ready and warm-shutdown lines are Information (.NET's convention); the CLI shows them at
            // Celery's default WARNING level as it always has, in Celery's format.
            .AddFilter(Celeriac.Worker.CeleriacWorker.LifecycleCategory, minimum <= LogLevel.Warning ? LogLevel.Information : minimum)
            .AddConsole(o =>
            {
                o.FormatterName = CeleryConsoleFormatter.FormatterName;
                o.LogToStandardErrorThreshold = LogLevel.Trace;
            })
            .AddConsoleFormatter<CeleryConsoleFormatter, CeleryConsoleFormatterOptions>(o =>
            {
                o.TimeProvider = timeProvider ?? TimeProvider.System;
            }));
}
