using Microsoft.Extensions.Logging.Console;

namespace Celeriac.Cli.Logging;

/// <summary>Options of <see cref="CeleryConsoleFormatter"/>.</summary>
public sealed class CeleryConsoleFormatterOptions : ConsoleFormatterOptions
{
    /// <summary>The clock the time stamps come from (local time, as Celery's). <value>TimeProvider.System</value></summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>The process name shown after the level. <value>MainProcess</value></summary>
    public string ProcessName { get; set; } = "MainProcess";
}
