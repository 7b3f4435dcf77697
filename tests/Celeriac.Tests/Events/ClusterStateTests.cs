using Celeriac.Events;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Events;

/// <summary>
/// <see cref="ClusterState"/> against Celery's <c>events.state.State</c>: liveness by heartbeat (the 200% window),
/// <c>worker-offline</c>, the state precedence and merge rules for events out of order, and the memory bounds. Time is
/// a fake clock: nothing here waits.
/// </summary>
public sealed class ClusterStateTests
{
    private static readonly DateTimeOffset s_start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly FakeTimeProvider _time = new(s_start);

    private double Now => EventMessages.Timestamp(_time.GetUtcNow());

    /// <summary>An event as a receiver hands it on: received now on the fake clock.</summary>
    private CeleryEvent Event(string type, params (string Key, object? Value)[] fields)
    {
        var all = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["hostname"] = "w1@host",
            ["utcoffset"] = 0L,
            ["pid"] = 42L,
            ["clock"] = 1L,
            ["timestamp"] = Now,
            ["type"] = type,
            ["local_received"] = Now,
        };
        foreach ((string key, object? value) in fields)
        {
            all[key] = value;
        }

        return new CeleryEvent(all);
    }

    private CeleryEvent Heartbeat(string type = "worker-heartbeat", string host = "w1@host") =>
        Event(type, ("hostname", host), ("freq", 2.0), ("active", 1L), ("processed", 7L), ("loadavg", new List<object?> { 0.5, 0.25, 0.0 }), ("sw_ident", "py-celery"), ("sw_ver", "5.2.6"), ("sw_sys", "Linux"));

    private CeleryEvent TaskEvent(string type, string uuid, params (string Key, object? Value)[] fields) =>
        Event(type, [("uuid", uuid), .. fields]);

    [Fact]
    public void Heartbeat_AliveUntilTwiceFreqHasPassed_ThenOffline()
    {
        var state = new ClusterState(_time);
        state.Apply(Heartbeat("worker-online"));

        ClusterWorker online = state.GetWorker("w1@host")!;
        Assert.True(online.Alive);
        Assert.Equal("ONLINE", online.Status);
        Assert.Equal((42L, 2.0, 1L, 7L, "py-celery", "5.2.6", "Linux"), (online.Pid, online.Freq, online.Active, online.Processed, online.SwIdent, online.SwVer, online.SwSys));
        Assert.Equal([0.5, 0.25, 0.0], online.LoadAverage);

        // Celery's heartbeat_expires: the last heartbeat plus freq × 200%.
        Assert.Equal(s_start + TimeSpan.FromSeconds(4), online.HeartbeatExpires);
        _time.Advance(TimeSpan.FromSeconds(3.9));
        Assert.True(state.GetWorker("w1@host")!.Alive);
        _time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.False(state.GetWorker("w1@host")!.Alive);
        Assert.Empty(state.AliveWorkers);

        state.Apply(Heartbeat());
        Assert.True(state.GetWorker("w1@host")!.Alive);
        Assert.Single(state.AliveWorkers);
    }

    [Fact]
    public void WorkerOffline_OfflineAtOnce_KnownWorkerKept_UnknownNotCreated()
    {
        var state = new ClusterState(_time);
        state.Apply(Heartbeat("worker-online"));
        state.Apply(Heartbeat("worker-offline"));

        ClusterWorker offline = state.GetWorker("w1@host")!;
        Assert.False(offline.Alive);
        Assert.Equal("OFFLINE", offline.Status);
        Assert.Null(offline.LastHeartbeat);

        state.Apply(Heartbeat("worker-offline", "never-seen@host"));
        Assert.Null(state.GetWorker("never-seen@host"));
        Assert.Equal(3, state.EventCount);
    }

    [Fact]
    public void Heartbeats_OnlyTheLatestFourKept_AndOneOutOfOrderDoesNotMoveTheLastBack()
    {
        var state = new ClusterState(_time);
        for (int i = 0; i < 6; i++)
        {
            state.Apply(Heartbeat());
            _time.Advance(TimeSpan.FromSeconds(2));
        }

        DateTimeOffset last = state.GetWorker("w1@host")!.LastHeartbeat!.Value;
        Assert.Equal(s_start + TimeSpan.FromSeconds(10), last);

        // A heartbeat that was received earlier (a late, reordered delivery) is filed in order; the latest stays.
        var late = new Dictionary<string, object?>(Heartbeat().Fields) { ["local_received"] = EventMessages.Timestamp(s_start + TimeSpan.FromSeconds(9)) };
        state.Apply(new CeleryEvent(late));
        Assert.Equal(last, state.GetWorker("w1@host")!.LastHeartbeat);
    }

    [Fact]
    public void TaskEvents_InOrder_StateTimestampsRuntimeWorkerAndTimeline()
    {
        var state = new ClusterState(_time);
        state.Apply(TaskEvent("task-received", "t1", ("name", "tasks.add"), ("args", "(2, 3)"), ("kwargs", "{}"), ("root_id", "t1"), ("parent_id", null), ("retries", 0L), ("eta", null), ("expires", null)));
        _time.Advance(TimeSpan.FromSeconds(1));
        state.Apply(TaskEvent("task-started", "t1"));
        _time.Advance(TimeSpan.FromSeconds(1));
        state.Apply(TaskEvent("task-succeeded", "t1", ("result", "5"), ("runtime", 0.02)));

        ClusterTask task = state.GetTask("t1")!;
        Assert.Equal((TaskStates.Success, "tasks.add", "(2, 3)", "{}", "5", 0.02, "w1@host", "t1"), (task.State, task.Name, task.Args, task.Kwargs, task.Result, task.Runtime, task.Worker, task.RootId));
        Assert.Equal((s_start, s_start.AddSeconds(1), s_start.AddSeconds(2)), (task.Received, task.Started, task.Succeeded));
        Assert.Equal(s_start.AddSeconds(2), task.Timestamp);
        Assert.True(task.Ready);
        Assert.Equal(["task-received", "task-started", "task-succeeded"], task.Timeline.Select(e => e.Type));

        // A task event counts as a heartbeat of its worker, which Celery's state creates if it is new (freq 60 then).
        ClusterWorker worker = state.GetWorker("w1@host")!;
        Assert.True(worker.Alive);
        Assert.Equal(60, worker.Freq);
        Assert.Equal(1, state.TaskCount);
        Assert.Equal(["tasks.add"], state.TaskTypes());
    }

    [Fact]
    public void TaskEvents_OutOfOrder_PrecedenceKeepsTheLaterState_ReceivedOnlyFillsItsFields()
    {
        var state = new ClusterState(_time);
        state.Apply(TaskEvent("task-succeeded", "t1", ("result", "5"), ("runtime", 0.5)));
        state.Apply(TaskEvent("task-started", "t1"));
        state.Apply(TaskEvent("task-received", "t1", ("name", "tasks.add"), ("args", "(2, 3)"), ("kwargs", "{}"), ("retries", 0L), ("result", "not taken")));

        ClusterTask task = state.GetTask("t1")!;
        Assert.Equal((TaskStates.Success, "tasks.add", "(2, 3)", "5", 0.5), (task.State, task.Name, task.Args, task.Result, task.Runtime));
        Assert.NotNull(task.Started);
        Assert.NotNull(task.Received);

        state.Apply(TaskEvent("task-failed", "t2", ("exception", "ValueError('x')"), ("traceback", "Traceback ...")));
        state.Apply(TaskEvent("task-started", "t2"));
        Assert.Equal((TaskStates.Failure, "ValueError('x')", "Traceback ..."), (state.GetTask("t2")!.State, state.GetTask("t2")!.Exception, state.GetTask("t2")!.Traceback));
    }

    [Fact]
    public void Retry_AlwaysApplies_AndTheNextReceivedTakesOver()
    {
        var state = new ClusterState(_time);
        state.Apply(TaskEvent("task-received", "t1", ("name", "tasks.flaky"), ("retries", 0L)));
        state.Apply(TaskEvent("task-started", "t1"));
        state.Apply(TaskEvent("task-retried", "t1", ("exception", "KeyError('transient')"), ("traceback", "tb")));
        Assert.Equal(TaskStates.Retry, state.GetTask("t1")!.State);

        state.Apply(TaskEvent("task-received", "t1", ("name", "tasks.flaky"), ("retries", 1L)));
        ClusterTask task = state.GetTask("t1")!;
        Assert.Equal((TaskStates.Received, 1L, "KeyError('transient')"), (task.State, task.Retries, task.Exception));
        Assert.NotNull(task.Retried);
        Assert.Equal(2, state.TaskCount);
    }

    [Fact]
    public void SentRevokedRejectedAndCustom_TheirStates_ClientAndWorker()
    {
        var state = new ClusterState(_time);
        state.Apply(TaskEvent("task-sent", "t1", ("hostname", "gen1@client"), ("name", "tasks.add"), ("queue", "celery"), ("exchange", ""), ("routing_key", "celery")));
        ClusterTask sent = state.GetTask("t1")!;
        Assert.Equal((TaskStates.Pending, "gen1@client", null, "celery", ""), (sent.State, sent.Client, sent.Worker, sent.RoutingKey, sent.Exchange));
        Assert.Null(state.GetWorker("gen1@client"));

        state.Apply(TaskEvent("task-revoked", "t2", ("terminated", false), ("signum", null), ("expired", false)));
        state.Apply(TaskEvent("task-rejected", "t3", ("requeue", false)));
        state.Apply(TaskEvent("task-started", "t4"));
        state.Apply(TaskEvent("task-progress", "t4", ("current", 3L)));
        Assert.Equal(
            (TaskStates.Revoked, ClusterState.Rejected, "PROGRESS"),
            (state.GetTask("t2")!.State, state.GetTask("t3")!.State, state.GetTask("t4")!.State));
        Assert.NotNull(state.GetTask("t2")!.Revoked);
        Assert.NotNull(state.GetTask("t3")!.Rejected);

        IReadOnlyDictionary<string, int> counts = state.TaskCountsByState();
        Assert.Equal(
            [(TaskStates.Pending, 1), ("PROGRESS", 1), (ClusterState.Rejected, 1), (TaskStates.Revoked, 1)],
            counts.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => (c.Key, c.Value)));
    }

    [Fact]
    public void MaxTasks_TheLeastRecentlyUpdatedTaskGoesFirst()
    {
        var state = new ClusterState(_time, maxTasks: 3);
        state.Apply(TaskEvent("task-received", "t1"));
        state.Apply(TaskEvent("task-received", "t2"));
        state.Apply(TaskEvent("task-received", "t3"));
        state.Apply(TaskEvent("task-started", "t1"));
        state.Apply(TaskEvent("task-received", "t4"));

        Assert.Null(state.GetTask("t2"));
        Assert.Equal(["t4", "t1", "t3"], state.Tasks().Select(t => t.Uuid));
        Assert.Equal(["t4", "t1"], state.Tasks(limit: 2).Select(t => t.Uuid));
        Assert.Equal(3, state.TasksByWorker("w1@host").Count);
    }

    [Fact]
    public void MaxTasks_TenThousandByDefault_MemoryStaysBounded()
    {
        var state = new ClusterState(_time);
        for (int i = 0; i < 12_000; i++)
        {
            state.Apply(TaskEvent("task-received", "t" + i, ("name", "tasks.add")));
        }

        Assert.Equal(ClusterState.DefaultMaxTasks, state.Tasks().Count);
        Assert.Null(state.GetTask("t1999"));
        Assert.NotNull(state.GetTask("t2000"));
        Assert.Equal(12_000, state.TaskCount);
    }

    [Fact]
    public void MaxWorkers_TheLeastRecentlySeenWorkerGoesFirst()
    {
        var state = new ClusterState(_time, maxWorkers: 2);
        state.Apply(Heartbeat(host: "a@h"));
        state.Apply(Heartbeat(host: "b@h"));
        state.Apply(Heartbeat(host: "a@h"));
        state.Apply(Heartbeat(host: "c@h"));

        Assert.Equal(["a@h", "c@h"], state.Workers.Select(w => w.Hostname));
    }

    [Fact]
    public void Clear_ForgetsEverything()
    {
        var state = new ClusterState(_time);
        state.Apply(Heartbeat());
        state.Apply(TaskEvent("task-received", "t1", ("name", "tasks.add")));
        state.Clear();

        Assert.Empty(state.Workers);
        Assert.Empty(state.Tasks());
        Assert.Empty(state.TaskTypes());
        Assert.Equal((0L, 0L), (state.EventCount, state.TaskCount));
    }
}
