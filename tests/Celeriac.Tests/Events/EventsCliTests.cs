using System.Collections.Concurrent;
using Celeriac.Events;
using Celeriac.Tests.Cli;
using Celeriac.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Tests.Events;

/// <summary>
/// <c>celeriac worker -E</c> (once refused as an unknown option), <c>--without-heartbeat</c> and
/// <c>--heartbeat-interval</c>, the banner's task-events line, and the settings' names.
/// </summary>
public sealed class EventsCliTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(CliRun Run, CeleriacOptions Options, List<CeleryEvent> Events)> RunWorkerAsync(params string[] flags)
    {
        string broker = CliRun.NewBroker();
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker, LoggerFactory = NullLoggerFactory.Instance });
        app.AddTasksFromAssembly(typeof(Quickstart.Tasks).Assembly);
        await using var client = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker });
        var events = new ConcurrentQueue<CeleryEvent>();
        var receiver = new EventReceiver(client) { WakeupWorkers = false };
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task reading = Task.Run(async () =>
        {
            await foreach (CeleryEvent e in receiver.ReadAsync(stopReading.Token))
            {
                events.Enqueue(e);
            }
        }, Ct);
        await receiver.Subscribed.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        using var stop = new CancellationTokenSource();
        Task<CliRun> run = CliRun.RunAsync(["worker", "-c", "2", "-n", "cli@test", "--broker", broker, .. flags], app, ct: stop.Token);
        AsyncResult result = await client.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
        Assert.Equal(5, await result.GetAsync<int>(TimeSpan.FromSeconds(15), Ct));
        await stop.CancelAsync();
        CliRun stopped = await run.WaitAsync(TimeSpan.FromSeconds(20), Ct);
        await Task.Delay(200, Ct);
        await stopReading.CancelAsync();
        await reading.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        CeleriacOptions options = app.Options;
        await app.DisposeAsync();
        return (stopped, options, [.. events]);
    }

    [Theory]
    [InlineData("-E")]
    [InlineData("--task-events")]
    [InlineData("--events")]
    public async Task Worker_TaskEventsFlag_Accepted_BannerSaysOn_AndTaskEventsAreSent(string flag)
    {
        (CliRun run, CeleriacOptions options, List<CeleryEvent> events) = await RunWorkerAsync(flag);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.True(options.TaskEvents);
        Assert.Contains(".> task events: ON", run.Out, StringComparison.Ordinal);
        Assert.Equal(
            ["worker-online", "task-received", "task-started", "task-succeeded", "worker-offline"],
            events.Where(e => e.Type != "worker-heartbeat").Select(e => e.Type));
    }

    [Fact]
    public async Task Worker_NoFlag_BannerAsCelerys_WorkerEventsOnly()
    {
        (CliRun run, CeleriacOptions options, List<CeleryEvent> events) = await RunWorkerAsync();

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.False(options.TaskEvents);
        Assert.Contains(".> task events: OFF (enable -E to monitor tasks in this worker)", run.Out, StringComparison.Ordinal);
        Assert.Equal(["worker-online", "worker-offline"], events.Where(e => e.Type != "worker-heartbeat").Select(e => e.Type));
    }

    [Fact]
    public async Task Worker_WithoutHeartbeatAndInterval_ReachTheOptions_NoWorkerEvents()
    {
        (CliRun run, CeleriacOptions options, List<CeleryEvent> events) = await RunWorkerAsync("--without-heartbeat", "--heartbeat-interval", "5");

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal((true, TimeSpan.FromSeconds(5)), (options.WithoutHeartbeat, options.HeartbeatInterval));
        Assert.Empty(events);
    }

    [Fact]
    public async Task Worker_BadHeartbeatInterval_OneLineAndUsageExitCode()
    {
        CliRun run = await CliRun.RunAsync(["worker", "--heartbeat-interval", "soon", "--broker", CliRun.NewBroker()], ct: Ct);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Single(run.ErrorLines);
    }

    [Fact]
    public void Settings_EnvironmentAndAppsettingsNames_MapToTheOptions()
    {
        var options = new CeleriacOptions();
        var env = new Dictionary<string, string>
        {
            ["CELERIAC_TASK_EVENTS"] = "true",
            ["CELERIAC_WITHOUT_HEARTBEAT"] = "1",
            ["CELERIAC_HEARTBEAT_INTERVAL"] = "2.5",
            ["CELERIAC_TASK_SEND_SENT_EVENT"] = "yes",
        };
        CeleriacSettings.ApplyEnvironment(options, name => env.GetValueOrDefault(name));

        Assert.Equal((true, true, TimeSpan.FromSeconds(2.5), true), (options.TaskEvents, options.WithoutHeartbeat, options.HeartbeatInterval, options.TaskSendSentEvent));

        var fromJson = new CeleriacOptions();
        CeleriacSettings.ApplyJson(fromJson, """{"Celeriac": {"TaskEvents": true, "TaskSendSentEvent": true}}"""u8);
        Assert.Equal((true, true), (fromJson.TaskEvents, fromJson.TaskSendSentEvent));
        Assert.Throws<CeleriacConfigurationException>(() => new CeleriacOptions { HeartbeatInterval = TimeSpan.Zero }.Validate());
    }
}
