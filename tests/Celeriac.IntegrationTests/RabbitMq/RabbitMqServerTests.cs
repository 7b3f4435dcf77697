using System.Diagnostics;
using System.Globalization;
using Celeriac.TestServers;

namespace Celeriac.IntegrationTests.RabbitMq;

/// <summary>The RabbitMQ fixture itself: a real node starts, answers rabbitmqctl, stops, starts again with its data, and two run at once.</summary>
public sealed class RabbitMqServerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    // A durable queue declared inside the node (there is no AMQP client here): it must outlive a restart.
    private static Task<string> DeclareDurableQueueAsync(RabbitMqServer server, string name) =>
        server.CtlAsync("eval", $"rabbit_amqqueue:declare(rabbit_misc:r(<<\"/\">>, queue, <<\"{name}\">>), true, false, [], none, <<\"celeriac\">>).");

    private static async Task<string[]> QueueNamesAsync(RabbitMqServer server) =>
        (await server.CtlAsync("list_queues", "-q", "--no-table-headers", "name")).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public async Task Starts_AnswersCtl_StopsAndStartsAgainWithItsData()
    {
        var clock = Stopwatch.StartNew();
        RabbitMqServer server = await RabbitMqServer.StartAsync(Ct);
        TimeSpan firstStart = clock.Elapsed;
        string dir = server.Directory;
        await using (server)
        {
            Report(string.Create(CultureInfo.InvariantCulture, $"first start (new database): {firstStart.TotalSeconds:F1} s"));
            Assert.True(server.IsRunning);
            Assert.Matches(@"^amqp://guest:guest@127\.0\.0\.1:\d+/%2F$", server.Url());
            Assert.EndsWith("/celeriac%2Ftest", server.Url("celeriac/test"), StringComparison.Ordinal);

            Assert.Empty(await QueueNamesAsync(server));
            await DeclareDurableQueueAsync(server, "celeriac.durable");
            await server.CtlAsync("add_vhost", "celeriac-vhost");
            Assert.Equal(["celeriac.durable"], await QueueNamesAsync(server));

            clock.Restart();
            await server.StopAsync();
            Report(string.Create(CultureInfo.InvariantCulture, $"graceful stop: {clock.Elapsed.TotalSeconds:F1} s"));
            Assert.False(server.IsRunning);
            await Assert.ThrowsAsync<InvalidOperationException>(() => server.CtlAsync("list_queues"));

            clock.Restart();
            await server.StartAgainAsync(Ct);
            Report(string.Create(CultureInfo.InvariantCulture, $"start again (existing database): {clock.Elapsed.TotalSeconds:F1} s"));
            Assert.Equal(["celeriac.durable"], await QueueNamesAsync(server));
            Assert.Contains("celeriac-vhost", await server.CtlAsync("list_vhosts", "-q", "--no-table-headers"), StringComparison.Ordinal);

            server.Kill();
            Assert.False(server.IsRunning);
            clock.Restart();
            await server.StartAgainAsync(Ct);
            Report(string.Create(CultureInfo.InvariantCulture, $"start after SIGKILL: {clock.Elapsed.TotalSeconds:F1} s"));
            Assert.Equal(["celeriac.durable"], await QueueNamesAsync(server));
            Assert.Contains("Server startup complete", server.Log, StringComparison.Ordinal);
        }

        Assert.False(server.IsRunning);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public async Task TwoNodes_RunAtOnce_EachWithItsOwnPortsAndQueues()
    {
        var clock = Stopwatch.StartNew();
        RabbitMqServer[] servers = await Task.WhenAll(RabbitMqServer.StartAsync(Ct), RabbitMqServer.StartAsync(Ct));
        Report(string.Create(CultureInfo.InvariantCulture, $"two nodes started side by side: {clock.Elapsed.TotalSeconds:F1} s"));
        await using RabbitMqServer a = servers[0];
        await using RabbitMqServer b = servers[1];

        Assert.NotEqual(a.NodeName, b.NodeName);
        Assert.Equal(4, new HashSet<int> { a.Port, a.DistributionPort, b.Port, b.DistributionPort }.Count);

        await DeclareDurableQueueAsync(a, "only.on.a");
        await DeclareDurableQueueAsync(b, "only.on.b");
        Assert.Equal(["only.on.a"], await QueueNamesAsync(a));
        Assert.Equal(["only.on.b"], await QueueNamesAsync(b));

        // Stopping one leaves the other (and the epmd they share) working.
        await a.StopAsync();
        Assert.Equal(["only.on.b"], await QueueNamesAsync(b));
        await a.StartAgainAsync(Ct);
        Assert.Equal(["only.on.a"], await QueueNamesAsync(a));
    }
}
