using Celeriac.Cli.Logging;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Cli;

public sealed class CeleryConsoleFormatterTests
{
    [Theory]
    [InlineData(LogLevel.Debug, "DEBUG")]
    [InlineData(LogLevel.Information, "INFO")]
    [InlineData(LogLevel.Warning, "WARNING")]
    [InlineData(LogLevel.Error, "ERROR")]
    [InlineData(LogLevel.Critical, "CRITICAL")]
    public void Format_Level_UsesCeleryWords(LogLevel level, string word)
    {
        var time = new DateTimeOffset(2026, 11, 24, 5, 14, 28, 123, TimeSpan.Zero);

        string line = CeleryConsoleFormatter.Format(time, level, "MainProcess", "Task tasks.add[abc] received");

        Assert.Equal($"[2026-11-24 05:14:28,123: {word}/MainProcess] Task tasks.add[abc] received", line);
    }

    [Fact]
    public void Write_FakeClock_UsesItsTime()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 24, 5, 14, 28, 123, TimeSpan.Zero));
        var options = new CeleryConsoleFormatterOptions { TimeProvider = clock, UseUtcTimestamp = true };
        using var formatter = new CeleryConsoleFormatter(new StaticMonitor(options));
        using var writer = new StringWriter();

        var entry = new Microsoft.Extensions.Logging.Abstractions.LogEntry<string>(LogLevel.Information, "Celeriac.Worker", default, "celeriac@h ready.", null, (s, _) => s);
        formatter.Write(entry, new LoggerExternalScopeProvider(), writer);

        Assert.Equal("[2026-11-24 05:14:28,123: INFO/MainProcess] celeriac@h ready." + Environment.NewLine, writer.ToString());
    }

    [Theory]
    [InlineData("info", LogLevel.Information)]
    [InlineData("WARNING", LogLevel.Warning)]
    [InlineData("Critical", LogLevel.Critical)]
    [InlineData("fatal", LogLevel.Critical)]
    public void TryParseLevel_CeleryNames_Parse(string text, LogLevel expected)
    {
        Assert.True(CliLogging.TryParseLevel(text, out LogLevel level));
        Assert.Equal(expected, level);
    }

    private sealed class StaticMonitor(CeleryConsoleFormatterOptions value) : IOptionsMonitor<CeleryConsoleFormatterOptions>
    {
        public CeleryConsoleFormatterOptions CurrentValue => value;

        public CeleryConsoleFormatterOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<CeleryConsoleFormatterOptions, string?> listener) => null;
    }
}
