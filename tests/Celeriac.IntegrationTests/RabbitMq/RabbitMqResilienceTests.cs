using Celeriac.IntegrationTests.Support;
using Celeriac.TestServers;

namespace Celeriac.IntegrationTests.RabbitMq;

/// <summary>Real worker processes on a real rabbitmq-server that is restarted while late-acked tasks flow.</summary>
public sealed class RabbitMqResilienceTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-rmq-").FullName;
    private RabbitMqServer _rabbit = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string RecordFile => Path.Join(_dir, "runs.txt");

    private string ResultsUrl => "sqlite:///" + Path.Join(_dir, "results.db");

    public async ValueTask InitializeAsync() => _rabbit = await RabbitMqServer.StartAsync(Ct);

    public async ValueTask DisposeAsync()
    {
        await _rabbit.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task BrokerRestarted_While5000LateAckedTasksFlow_EveryTaskCompletes()
    {
        const int Count = 5000;
        var env = new Dictionary<string, string>
        {
            ["CELERIAC_BROKER_URL"] = _rabbit.Url(),
            ["CELERIAC_RESULT_BACKEND"] = ResultsUrl,
            ["CELERIAC_TEST_RECORD"] = RecordFile,
            ["CELERIAC_ACKS_LATE"] = "true",
        };
        await using ChildProcess w1 = ChildProcess.Start(_dir, env, ["worker", "-A", ChildProcess.TestTasksDll, "-c", "4", "-n", "w1@%h"]);
        await using ChildProcess w2 = ChildProcess.Start(_dir, env, ["worker", "-A", ChildProcess.TestTasksDll, "-c", "4", "-n", "w2@%h"]);
        foreach (ChildProcess w in (ChildProcess[])[w1, w2])
        {
            await w.Ready.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        }

        await using var client = new CeleriacApp(new CeleriacOptions { BrokerUrl = _rabbit.Url(), ResultBackend = ResultsUrl });
        (int sent, int missing, TimeSpan elapsed) = await TaskFlow.RunAsync(
            client,
            Count,
            async () =>
            {
                await _rabbit.StopAsync();
                await Task.Delay(TimeSpan.FromSeconds(2), Ct);
                await _rabbit.StartAgainAsync(Ct);
            },
            Ct);

        string[] runs = Celeriac.TestTasks.RecordingTasks.ReadRuns(RecordFile);
        int distinct = runs.Select(l => l.Split(' ')[0]).Distinct().Count();
        Assert.True(missing == 0, $"{missing} of {sent} results missing; {distinct} tasks ran ({runs.Length} runs)\nw1:\n{w1.Stderr[^Math.Min(3000, w1.Stderr.Length)..]}\nw2:\n{w2.Stderr[^Math.Min(3000, w2.Stderr.Length)..]}");
        Assert.Equal(Count, distinct);
        Assert.True(elapsed > TimeSpan.FromSeconds(10), "the flow should have spanned the restart");

        // Late acks: a task running when the broker went away is delivered again, so a few may run twice; none zero times.
        Assert.InRange(runs.Length, Count, Count + 200);
    }
}
