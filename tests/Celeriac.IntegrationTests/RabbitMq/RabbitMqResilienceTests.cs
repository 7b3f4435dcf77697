using System.Globalization;
using System.Text.RegularExpressions;
using Celeriac.IntegrationTests.Support;
using Celeriac.TestServers;

namespace Celeriac.IntegrationTests.RabbitMq;

/// <summary>
/// Real worker processes on a real rabbitmq-server that is restarted, or that drops every connection, while
/// late-acked tasks flow.
/// </summary>
public sealed partial class RabbitMqResilienceTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-rmq-").FullName;
    private readonly List<ChildProcess> _workers = [];
    private RabbitMqServer _rabbit = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string RecordFile => Path.Join(_dir, "runs.txt");

    private string ResultsUrl => "sqlite:///" + Path.Join(_dir, "results.db");

    public async ValueTask InitializeAsync() => _rabbit = await RabbitMqServer.StartAsync(Ct);

    public async ValueTask DisposeAsync()
    {
        foreach (ChildProcess worker in _workers)
        {
            await worker.DisposeAsync();
        }

        await _rabbit.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Two late-acking worker processes (concurrency 4, prefetch 16) on the default queue, ready; killed with the test.</summary>
    private async Task<(ChildProcess W1, ChildProcess W2)> StartTwoWorkersAsync()
    {
        var env = new Dictionary<string, string>
        {
            ["CELERIAC_BROKER_URL"] = _rabbit.Url(),
            ["CELERIAC_RESULT_BACKEND"] = ResultsUrl,
            ["CELERIAC_TEST_RECORD"] = RecordFile,
            ["CELERIAC_ACKS_LATE"] = "true",
        };
        foreach (string name in (string[])["w1", "w2"])
        {
            _workers.Add(ChildProcess.Start(_dir, env, ["worker", "-A", ChildProcess.TestTasksDll, "-c", "4", "-n", name + "@%h"]));
        }

        foreach (ChildProcess w in _workers)
        {
            await w.Ready.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        }

        return (_workers[0], _workers[1]);
    }

    private CeleriacApp Client() => new(new CeleriacOptions { BrokerUrl = _rabbit.Url(), ResultBackend = ResultsUrl });

    /// <summary>Every recorded run, as token and process id.</summary>
    private (string Token, string Pid)[] Runs() =>
        [.. Celeriac.TestTasks.RecordingTasks.ReadRuns(RecordFile).Select(l => l.Split(' ')).Select(p => (p[0], p[1]))];

    /// <summary>
    /// Every task of the flow (<see cref="TaskFlow"/>'s tokens t0, t1…) ran and its result is stored: none missing,
    /// every token ran, and late acks ran at most <paramref name="maxDuplicates"/> twice.
    /// </summary>
    private async Task AssertFlowCompletedAsync(int count, int sent, int missing, int maxDuplicates, params ChildProcess[] workers)
    {
        (string Token, string Pid)[] runs = [.. Runs().Where(r => r.Token.StartsWith('t'))];
        int distinct = runs.Select(r => r.Token).Distinct().Count();
        if (missing > 0)
        {
            string logs = string.Join('\n', workers.Select((w, i) => $"w{i + 1} (pid {w.Id}):\n{w.Stderr[^Math.Min(5000, w.Stderr.Length)..]}"));
            string queues = await _rabbit.CtlAsync("list_queues", "-q", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged", "consumers");
            string channels = await _rabbit.CtlAsync("list_channels", "-q", "--no-table-headers", "pid", "connection", "consumer_count", "messages_unacknowledged");
            Assert.Fail($"{missing} of {sent} results missing; {distinct} tasks ran ({runs.Length} runs)\nqueues:\n{queues}\nchannels:\n{channels}\n{logs}");
        }

        Assert.Equal(count, sent);
        Assert.Equal(count, distinct);

        // Late acks: a task running when the connection went away is delivered again, so a few may run twice; none zero times.
        int duplicates = runs.Length - count;
        string[] again = [.. runs.GroupBy(r => r.Token).Where(g => g.Count() > 1).Select(g => g.Key).Order(StringComparer.Ordinal)];
        TestContext.Current.TestOutputHelper?.WriteLine($"{runs.Length} runs of {count} tasks: {duplicates} ran again ({string.Join(' ', again.Take(20))}{(again.Length > 20 ? " …" : "")})");
        Assert.InRange(duplicates, 0, maxDuplicates);
    }

    [Fact]
    public async Task BrokerRestarted_While5000LateAckedTasksFlow_EveryTaskCompletes()
    {
        const int Count = 5000;
        (ChildProcess w1, ChildProcess w2) = await StartTwoWorkersAsync();
        await using CeleriacApp client = Client();
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

        await AssertFlowCompletedAsync(Count, sent, missing, maxDuplicates: 200, w1, w2);
        Assert.True(elapsed > TimeSpan.FromSeconds(10), "the flow should have spanned the restart");
    }

    [Fact]
    public async Task ConnectionsClosedTwiceByTheBroker_While3000LateAckedTasksFlow_EveryTaskCompletesAndWorkersGoOn()
    {
        // The broker stays up and drops every client connection (as a proxy, a load balancer or an operator would),
        // twice: 1.5 s into a flow of several seconds, and 2 s after the first close (rabbitmqctl takes a second or so).
        // Eight 15 s tasks sent first fill the workers' slots through both closes (even on a loaded machine, where
        // rabbitmqctl is slow), so each worker also holds prefetched tasks it has not started when its connection drops.
        const int Count = 3000;
        (ChildProcess w1, ChildProcess w2) = await StartTwoWorkersAsync();
        await using CeleriacApp client = Client();
        AsyncResult[] slow = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => client.Signature("test.slow_first").DelayAsync("slow" + i, 15.0)));
        var closes = new List<(string[] RanBefore, string Said)>();
        (int sent, int missing, TimeSpan elapsed) = await TaskFlow.RunAsync(
            client,
            Count,
            async () =>
            {
                for (int i = 0; i < 2; i++)
                {
                    await Task.Delay(TimeSpan.FromSeconds(i == 0 ? 0 : 2), Ct);
                    string[] ranBefore = [.. Runs().Select(r => r.Token)];
                    closes.Add((ranBefore, (await _rabbit.CtlAsync("close_all_connections", "test")).ReplaceLineEndings(" ").Trim()));
                }
            },
            Ct,
            outageAfter: TimeSpan.FromSeconds(1.5));

        TestContext.Current.TestOutputHelper?.WriteLine($"flow took {elapsed.TotalSeconds:F1} s; {string.Join("; ", closes.Select(c => $"{c.RanBefore.Length} runs before '{c.Said}'"))}");
        Assert.All(closes, c => Assert.EndsWith("Closed 3 connections", c.Said, StringComparison.Ordinal)); // two workers and the client
        Assert.True(closes[1].RanBefore.Count(t => t.StartsWith('t')) < Count, "the second close should have come while tasks still flowed");

        // Some may run twice, at each close: a delivery in flight (at most a prefetch window of 16 per worker), and a
        // batch of 50 publishes whose confirms were lost with the client's connection, which it sends again.
        await AssertFlowCompletedAsync(Count, sent, missing, maxDuplicates: 2 * (50 + (2 * 16)), w1, w2);

        // Late acks: a long task running when the connection dropped is delivered again and runs a second time (its
        // own ack went to the lost channel); one still waiting in a worker then ran once.
        await Task.WhenAll(slow.Select(r => r.GetAsync<string>(TimeSpan.FromSeconds(60), Ct)));
        ILookup<string, string> runsOf = Runs().ToLookup(r => r.Token, r => r.Pid, StringComparer.Ordinal);
        string[] runningAtClose = [.. closes[0].RanBefore.Where(t => t.StartsWith("slow", StringComparison.Ordinal))];
        TestContext.Current.TestOutputHelper?.WriteLine($"{runningAtClose.Length} of 8 long tasks running at the first close; runs: {string.Join(' ', Enumerable.Range(0, 8).Select(i => runsOf["slow" + i].Count()))}");
        Assert.NotEmpty(runningAtClose);
        Assert.All(Enumerable.Range(0, 8).Select(i => "slow" + i), t => Assert.Equal(runningAtClose.Contains(t) ? 2 : 1, runsOf[t].Count()));

        // Both workers still run and take new tasks (RabbitMQ deals them out to every consumer of the queue), each
        // with one consumer on it as before.
        Assert.False(w1.HasExited || w2.HasExited, $"a worker exited\nw1:\n{w1.Stderr}\nw2:\n{w2.Stderr}");
        string consumers = await _rabbit.CtlAsync("list_consumers", "-q", "--no-table-headers", "queue_name", "channel_pid");
        Assert.True(consumers.Split('\n').Count(l => l.StartsWith("celery\t", StringComparison.Ordinal)) == 2, $"consumers:\n{consumers}");
        CeleriacTask record = client.Signature("test.record");
        AsyncResult[] after = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => record.DelayAsync("after" + i)));
        using (var within = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            within.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                await Task.WhenAll(after.Select(r => r.GetAsync<string>(null, within.Token)));
            }
            catch (OperationCanceledException) when (within.IsCancellationRequested && !Ct.IsCancellationRequested)
            {
                string channels = await _rabbit.CtlAsync("list_channels", "-q", "--no-table-headers", "pid", "connection", "consumer_count", "messages_unacknowledged");
                Assert.Fail($"{after.Count(r => !r.Ready)} of 40 tasks sent after the closes did not complete within 30 s\nchannels:\n{channels}\nw1:\n{w1.Stderr}\nw2:\n{w2.Stderr}");
            }
        }

        string[] ranAfter = [.. Runs().Where(r => r.Token.StartsWith("after", StringComparison.Ordinal)).Select(r => r.Pid).Distinct().Order(StringComparer.Ordinal)];
        Assert.Equal([.. new[] { w1.Id, w2.Id }.Select(id => id.ToString(CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal)], ranAfter);

        // Each worker logged the loss of its consumer channel at each close.
        foreach (ChildProcess w in (ChildProcess[])[w1, w2])
        {
            int lost = ChannelLost().Count(w.Stderr);
            TestContext.Current.TestOutputHelper?.WriteLine($"pid {w.Id}: {lost} 'Consumer channel lost' line(s)");
            Assert.True(lost >= 2, $"expected a 'Consumer channel lost' line per close:\n{w.Stderr}");
        }
    }

    [GeneratedRegex("Consumer channel lost")]
    private static partial Regex ChannelLost();
}
