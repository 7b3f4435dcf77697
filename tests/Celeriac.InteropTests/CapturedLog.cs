using System.Text;
using Microsoft.Extensions.Logging;

namespace Celeriac.InteropTests;

/// <summary>A logger factory that keeps every formatted line (and its exception), to assert what a Celeriac worker logged.</summary>
public sealed class CapturedLog : ILoggerFactory
{
    private readonly StringBuilder _text = new();

    /// <summary>Everything logged so far, one line per entry: <c>LEVEL category: message</c>.</summary>
    public string Text
    {
        get
        {
            lock (_text)
            {
                return _text.ToString();
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private void Append(string line)
    {
        lock (_text)
        {
            _text.AppendLine(line);
        }
    }

    private sealed class Logger(CapturedLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                log.Append($"{logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
            }
        }
    }
}
