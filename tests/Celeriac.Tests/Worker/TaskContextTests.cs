using System.Collections.Concurrent;
using System.Text.Json;
using Celeriac.Tests.Conformance;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Worker;

/// <summary>What a running task knows about itself (Celery's <c>self.request</c>), and what track_started and result_extended store.</summary>
public sealed class TaskContextTests(RedisServerFixture redis, RabbitMqServerFixture rabbit) : IClassFixture<RedisServerFixture>, IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);
    private readonly TestBrokers _brokers = new(redis.Server, rabbit, "context");
    private readonly ConcurrentDictionary<string, Seen> _seen = new(StringComparer.Ordinal);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Brokers => TestBrokers.Names;

    public void Dispose() => _brokers.Dispose();

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task Context_HasTheMessagesFields_AndATaskSentFromATaskIsItsChild(string broker)
    {
        CeleriacApp app = await _brokers.NewAppAsync(broker, o => o.NodeName = "ctx@test");
        app.Task("t.outer", async (string tag, TaskContext context) =>
        {
            Record(tag, context);
            AsyncResult child = await app.SendTaskAsync("t.inner", ["child"], ct: context.CancellationToken);
            return child.Id;
        });
        app.Task("t.inner", (string tag, TaskContext context) =>
        {
            Record(tag, context);
            return tag;
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        DateTimeOffset sent = TimeProvider.System.GetUtcNow();

        AsyncResult outer = await app.SendTaskAsync("t.outer", ["top"], options: new ApplyOptions
        {
            Countdown = TimeSpan.FromMilliseconds(200),
            ExpiresIn = TimeSpan.FromMinutes(5),
            GroupId = "g-1",
            Headers = new Dictionary<string, object?> { ["tenant"] = "acme" },
        }, ct: Ct);
        string childId = await outer.GetAsync<string>(s_wait, Ct) ?? "";
        Assert.Equal("child", await app.AsyncResult(childId).GetAsync<string>(s_wait, Ct));

        Seen top = _seen["top"];
        Assert.Equal((outer.Id, "t.outer", 0, "ctx@test", app.Options.DefaultQueue), (top.Id, top.Name, top.Retries, top.Hostname, top.Queue));
        Assert.Equal("[\"top\"]", top.Args);
        Assert.Equal((outer.Id, (string?)null, "g-1", "acme"), (top.RootId, top.ParentId, top.GroupId, top.Tenant));
        Assert.InRange(top.Eta!.Value, sent + TimeSpan.FromMilliseconds(150), sent + TimeSpan.FromSeconds(5));
        Assert.InRange(top.Expires!.Value, sent + TimeSpan.FromMinutes(4), sent + TimeSpan.FromMinutes(6));
        Assert.Equal(app.Options.DefaultQueue, top.RoutingKey);

        // Celery's tree: the child's parent is the task that sent it, and its root the first task.
        Seen child = _seen["child"];
        Assert.Equal((childId, outer.Id, outer.Id, (string?)null, (DateTimeOffset?)null), (child.Id, child.ParentId, child.RootId, child.GroupId, child.Eta));
    }

    [Theory]
    [MemberData(nameof(Brokers))]
    public async Task TrackStartedAndResultExtended_ClientReadsStartedWithPidAndHostname_ThenTheExtendedResult(string broker)
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        CeleriacApp app = await _brokers.NewAppAsync(broker, o =>
        {
            o.NodeName = "tracked@test";
            o.TrackStarted = true;
            o.ResultExtended = true;
        });
        app.Task("t.wait", async (long x, string label, CancellationToken ct) =>
        {
            await release.Task.WaitAsync(ct);
            return x * 2;
        });
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        AsyncResult result = await app.SendTaskAsync("t.wait", [21L], new Dictionary<string, object?> { ["label"] = "café" }, ct: Ct);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (await result.GetStateAsync(Ct) != TaskStates.Started)
        {
            Assert.True(clock.Elapsed < s_wait, "STARTED never stored");
            await Task.Delay(20, Ct);
        }

        JsonElement started = result.Info!.Value;
        Assert.Equal(Environment.ProcessId, started.GetProperty("pid").GetInt32());
        Assert.Equal("tracked@test", started.GetProperty("hostname").GetString());

        release.SetResult();
        Assert.Equal(42, await result.GetAsync<long>(s_wait, Ct));
        ResultExtension extended = result.Meta!.Extended!;
        Assert.Equal(("t.wait", "tracked@test", 0, app.Options.DefaultQueue), (extended.Name, extended.Worker, extended.Retries, extended.Queue));
        Assert.Equal("[21]", System.Text.Encoding.UTF8.GetString(extended.Args.Span));
        Assert.Equal("café", JsonDocument.Parse(extended.Kwargs).RootElement.GetProperty("label").GetString());
    }

    private void Record(string tag, TaskContext c) =>
        _seen[tag] = new Seen(c.Id, c.Name, c.Retries, c.Hostname, c.Queue, c.Args.GetRawText(), c.RootId, c.ParentId, c.GroupId,
            c.Headers.Extra.TryGetValue("tenant", out object? tenant) ? tenant?.ToString() : null, c.Eta, c.Expires, c.RoutingKey);

    private sealed record Seen(string Id, string Name, int Retries, string Hostname, string Queue, string Args, string? RootId, string? ParentId,
        string? GroupId, string? Tenant, DateTimeOffset? Eta, DateTimeOffset? Expires, string RoutingKey);
}
