using System.Diagnostics;
using System.Text.Json;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// One chord of ten thousand tasks over three worker processes of two languages on one queue: two Celeriac workers
/// (the Quickstart as the <c>celeriac</c> CLI) and a real Celery 5.2 worker. Whichever finishes a member reports it
/// to the same join (<c>celery-taskset-meta-&lt;group&gt;.j</c>: Celeriac's Lua script, Celery's MULTI pipeline),
/// and exactly one of them, the one that completes it, sends the body.
/// </summary>
public sealed class BigChordInteropTests(RedisInteropFixture fx) : IAsyncLifetime
{
    private const int Size = 10_000;

    private static readonly TimeSpan s_wait = TimeSpan.FromMinutes(2);

    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-bigchord-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task Chord_OfTenThousand_OverTwoCeleriacProcessesAndACeleryWorker_BodyRunsOnceWithEveryResultInOrder()
    {
        // A queue of its own: only these three workers take its tasks. The Celeriac workers store result_extended, so
        // that each member's result names the worker that ran it (Celery's, without it, names none).
        string queue = "canvas.big." + Guid.NewGuid().ToString("N")[..8];
        string record = Path.Join(_dir, "body");
        string[] nodes = ["net1-bigchord@localhost", "net2-bigchord@localhost"];
        var env = new Dictionary<string, string> { ["CELERIAC_RESULT_EXTENDED"] = "true" };
        await using PythonWorker python = await PythonWorker.StartAsync(fx.BrokerUrl, fx.BackendUrl, queue, concurrency: 4, nodeName: "py-bigchord@localhost");
        await using CeleriacWorkerProcess net1 = await CeleriacWorkerProcess.StartAsync(_dir, fx.BrokerUrl, fx.BackendUrl, queue, 4, nodes[0], env);
        await using CeleriacWorkerProcess net2 = await CeleriacWorkerProcess.StartAsync(_dir, fx.BrokerUrl, fx.BackendUrl, queue, 4, nodes[1], env);
        await using CeleriacApp client = fx.NewApp();
        CeleriacTask add = client.Signature("tasks.add");
        Chord chord = Canvas.Chord(
            Enumerable.Range(0, Size).Select(i => add.S(i, 0).SetQueue(queue)),
            client.Signature("test.record_body").S(record).SetQueue(queue));

        var clock = Stopwatch.StartNew();
        AsyncResult body = await chord.ApplyAsync(ct: Ct);
        TimeSpan sent = clock.Elapsed;
        int count = await body.GetAsync<int>(s_wait, Ct);
        TimeSpan done = clock.Elapsed;
        TestContext.Current.TestOutputHelper?.WriteLine($"{Size} members sent in {sent.TotalSeconds:F1} s, body done after {done.TotalSeconds:F1} s");
        Assert.Equal(Size, count);

        // Every worker took part (the body's result alone would not say that the join crossed languages).
        GroupResult header = Assert.IsType<GroupResult>(body.Parent);
        TaskResultMeta[] metas = await header.Set.WaitAllAsync(s_wait, Ct);
        Assert.All(metas, m => Assert.Equal(TaskStates.Success, m.Status));
        Dictionary<string, int> byWorker = metas.GroupBy(m => m.Extended?.Worker ?? "celery").ToDictionary(g => g.Key, g => g.Count());
        string shares = string.Join(", ", byWorker.Select(kv => $"{kv.Key}: {kv.Value}"));
        TestContext.Current.TestOutputHelper?.WriteLine("members run by " + shares);
        Assert.All((string[])["celery", .. nodes], n => Assert.True(byWorker.GetValueOrDefault(n) > 0, $"{n} ran no member ({shares})"));

        // The member that completed the join deleted its keys: a member reported again later (a redelivery) finds
        // no size, and so cannot send the body a second time.
        string[] joinKeys = [.. new[] { ".j", ".t", ".s" }.Select(k => $"celery-taskset-meta-{header.Id}{k}")];
        Assert.Equal("0", (await fx.Server.CliAsync(["-n", "1", "EXISTS", .. joinKeys])).Trim());

        // Exactly once: with every worker stopped warm (each finishes what it runs and gives back what it had
        // prefetched) and the queue empty, nothing can run the body again, and it ran once, with the results in order.
        int[] exits = await Task.WhenAll(python.StopAsync(s_wait), net1.StopAsync(s_wait), net2.StopAsync(s_wait));
        Assert.Equal(new[] { 0, 0, 0 }, exits);
        Assert.Equal("0", (await fx.Server.CliAsync("-n", "0", "LLEN", queue)).Trim());
        string[] calls = [.. Directory.GetFiles(_dir, "body.*").SelectMany(File.ReadAllLines)];
        string call = Assert.Single(calls);
        string[] parts = call.Split(' ', 4);
        TestContext.Current.TestOutputHelper?.WriteLine($"body run by {parts[0]} (pid {parts[1]})");
        Assert.Equal(Size.ToString(System.Globalization.CultureInfo.InvariantCulture), parts[2]);
        using JsonDocument values = JsonDocument.Parse(parts[3]);
        Assert.Equal(Enumerable.Range(0, Size), values.RootElement.EnumerateArray().Select(v => v.GetInt32()));
    }
}
