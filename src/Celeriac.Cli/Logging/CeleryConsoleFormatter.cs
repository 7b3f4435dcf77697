using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Celeriac.Cli.Logging;

/// <summary>
/// Formats log lines as Celery's worker does:
/// <c>[2026-11-24 05:14:28,123: INFO/MainProcess] Task tasks.add[id] received</c>, with an exception's
/// text on the lines that follow.
/// </summary>
public sealed class CeleryConsoleFormatter : ConsoleFormatter, IDisposable
{
    /// <summary>The name to select this formatter with (<c>ConsoleLoggerOptions.FormatterName</c>).</summary>
    public const string FormatterName = "celery";

    private readonly IDisposable? _reload;
    private CeleryConsoleFormatterOptions _options;

    /// <summary>Creates the formatter (by the logging builder).</summary>
    public CeleryConsoleFormatter(IOptionsMonitor<CeleryConsoleFormatterOptions> options) : base(FormatterName)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.CurrentValue;
        _reload = options.OnChange(o => _options = o);
    }

    /// <summary>Celery's word for a level.</summary>
    public static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => "DEBUG",
        LogLevel.Information => "INFO",
        LogLevel.Warning => "WARNING",
        LogLevel.Error => "ERROR",
        LogLevel.Critical => "CRITICAL",
        _ => "NOTSET",
    };

    /// <inheritdoc />
    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        ArgumentNullException.ThrowIfNull(textWriter);
        string message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (string.IsNullOrEmpty(message) && logEntry.Exception is null)
        {
            return;
        }

        CeleryConsoleFormatterOptions options = _options;
        DateTimeOffset now = options.UseUtcTimestamp ? options.TimeProvider.GetUtcNow() : options.TimeProvider.GetLocalNow();
        textWriter.Write(Format(now, logEntry.LogLevel, options.ProcessName, message));
        if (logEntry.Exception is { } exception)
        {
            textWriter.Write(Environment.NewLine);
            textWriter.Write(exception.ToString());
        }

        textWriter.Write(Environment.NewLine);
    }

    /// <summary>One line without its exception: <c>[yyyy-MM-dd HH:mm:ss,fff: LEVEL/process] message</c>.</summary>
    public static string Format(DateTimeOffset time, LogLevel level, string processName, string message) =>
        string.Create(CultureInfo.InvariantCulture, $"[{time:yyyy-MM-dd HH:mm:ss,fff}: {LevelName(level)}/{processName}] {message}");

    /// <inheritdoc />
    public void Dispose() => _reload?.Dispose();
}
