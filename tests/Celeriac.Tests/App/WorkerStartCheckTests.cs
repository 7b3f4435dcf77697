using Celeriac.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Celeriac.Tests.App;

/// <summary>
/// A hosted worker refuses to start, with one log line per task, when DI cannot build a task it serves; and its ready
/// and shutdown lines are Information in a .NET host (issue 18, part 8).
/// </summary>
public sealed class WorkerStartCheckTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task HostedWorker_TaskClassNeedsUnregisteredService_RefusesToStartNamingTask()
    {
        var logs = new CollectingLoggerFactory();
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddCeleriac(o =>
        {
            o.BrokerUrl = "memory://" + Guid.NewGuid().ToString("N");
            o.LoggerFactory = logs;
        }).AddWorker();
        using IHost host = builder.Build();
        CeleriacApp app = host.Services.GetRequiredService<CeleriacApp>();
        app.Task("tasks.report", typeof(ReportTask).GetMethod(nameof(ReportTask.Run))!, typeof(ReportTask));
        app.Task("tasks.injected", typeof(InjectedParameterTask).GetMethod(nameof(InjectedParameterTask.Run))!);
        app.Task("tasks.add", (int x, int y) => x + y);

        var error = await Assert.ThrowsAsync<CeleriacConfigurationException>(() => host.StartAsync(Ct));

        Assert.Contains("tasks.report", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(IReportStore), error.Message, StringComparison.Ordinal);
        Assert.Contains("tasks.injected", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("tasks.add", error.Message, StringComparison.Ordinal);
        LogEntry[] lines = [.. logs.Entries.Where(e => e.EventId.Id == 39)];
        Assert.Equal(2, lines.Length);
        Assert.All(lines, l => Assert.Equal(LogLevel.Error, l.Level));
        Assert.Contains(lines, l => l.Message.StartsWith("Task tasks.report cannot be built", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Message.StartsWith("Task tasks.injected cannot be built", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == 7); // never ready
    }

    [Fact]
    public async Task HostedWorker_EveryTaskBuildable_StartsAndLogsReadyAndShutdownAtInformation()
    {
        var logs = new CollectingLoggerFactory();
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSingleton<IReportStore, ReportStore>();
        builder.Services.AddCeleriac(o =>
        {
            o.BrokerUrl = "memory://" + Guid.NewGuid().ToString("N");
            o.LoggerFactory = logs;
        }).AddWorker();
        using IHost host = builder.Build();
        CeleriacApp app = host.Services.GetRequiredService<CeleriacApp>();
        app.Task("tasks.report", typeof(ReportTask).GetMethod(nameof(ReportTask.Run))!, typeof(ReportTask));

        await host.StartAsync(Ct);
        AsyncResult sent = await app.SendTaskAsync("tasks.report", ["q3"], ct: Ct);
        string? stored = await sent.GetAsync<string>(TimeSpan.FromSeconds(10), Ct);
        await host.StopAsync(Ct);

        Assert.Equal("stored q3", stored);
        LogEntry ready = Assert.Single(logs.Entries, e => e.EventId.Id == 7);
        Assert.Equal(LogLevel.Information, ready.Level);
        Assert.Equal(global::Celeriac.Worker.CeleriacWorker.LifecycleCategory, ready.Category);
        LogEntry shutdown = Assert.Single(logs.Entries, e => e.EventId.Id == 8);
        Assert.Equal(LogLevel.Information, shutdown.Level);
    }

    [Fact]
    public void CliLogging_AtCelerysWarningLevel_StillShowsTheWorkersLifecycleLines()
    {
        using ILoggerFactory factory = Celeriac.Cli.Logging.CliLogging.CreateFactory(LogLevel.Warning);

        Assert.True(factory.CreateLogger(global::Celeriac.Worker.CeleriacWorker.LifecycleCategory).IsEnabled(LogLevel.Information));
        Assert.False(factory.CreateLogger("Celeriac.Worker").IsEnabled(LogLevel.Information));
    }

    public interface IReportStore
    {
        string Store(string name);
    }

    public sealed class ReportStore : IReportStore
    {
        public string Store(string name) => "stored " + name;
    }

    public sealed class ReportTask(IReportStore store)
    {
        public string Run(string name) => store.Store(name);
    }

    public static class InjectedParameterTask
    {
        public static string Run(string name, IReportStore store) => store.Store(name);
    }
}
