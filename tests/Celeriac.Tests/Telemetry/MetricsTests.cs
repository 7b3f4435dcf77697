using System.Diagnostics.Metrics;
using Celeriac.Tests.Support;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Celeriac.Tests.Telemetry;

/// <summary>Celeriac's metrics as an OpenTelemetry exporter sees them.</summary>
[Collection(TelemetryGroup.Name)]
public sealed class MetricsTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Tasks_AreCountedByOutcome_WithTheirDurationAndWait()
    {
        var metrics = new List<Metric>();
        using MeterProvider meters = Sdk.CreateMeterProviderBuilder().AddCeleriacInstrumentation().AddInMemoryExporter(metrics).Build();
        string prefix = "met" + Guid.NewGuid().ToString("N")[..8];
        CeleriacApp app = RunningWorker.NewApp();
        app.Task(prefix + ".ok", (int x) => x);
        app.Task(prefix + ".boom", int () => throw new InvalidOperationException("no"));
        await using RunningWorker run = await RunningWorker.StartAsync(app);

        AsyncResult[] oks = [await app.SendTaskAsync(prefix + ".ok", [1], ct: Ct), await app.SendTaskAsync(prefix + ".ok", [2], ct: Ct), await app.SendTaskAsync(prefix + ".ok", [3], ct: Ct)];
        AsyncResult boom = await app.SendTaskAsync(prefix + ".boom", ct: Ct);
        foreach (AsyncResult ok in oks)
        {
            await ok.GetAsync<int>(s_wait, Ct);
        }

        await Assert.ThrowsAsync<TaskFailedException>(() => boom.GetAsync<int>(s_wait, Ct));

        // The count comes in the last post-run step, just after the result is stored: wait for it.
        Assert.True(await Poll.UntilAsync(() => Count(meters, metrics, "celeriac.tasks", prefix + ".ok", "SUCCESS") == 3 && Count(meters, metrics, "celeriac.tasks", prefix + ".boom", "FAILURE") == 1, s_wait), Dump(metrics));
        Assert.Equal(3, HistogramCount(metrics, "celeriac.task.duration", prefix + ".ok", "SUCCESS"));
        Assert.Equal(1, HistogramCount(metrics, "celeriac.task.duration", prefix + ".boom", "FAILURE"));
        Assert.Equal(4, HistogramCount(metrics, "celeriac.task.queue_wait", null, null, prefix));
        Assert.Equal(0, Count(meters, metrics, "celeriac.tasks", prefix + ".ok", "FAILURE"));
        Assert.True(SumWhere(metrics, "messaging.client.sent.messages", "messaging.destination.name", "celery") >= 4);
        Assert.True(SumWhere(metrics, "messaging.client.consumed.messages", "messaging.destination.name", "celery") >= 4);
    }

    [Fact]
    public async Task ActiveAndPrefetched_AreObservedFromTheWorker()
    {
        var metrics = new List<Metric>();
        using MeterProvider meters = Sdk.CreateMeterProviderBuilder().AddCeleriacInstrumentation().AddInMemoryExporter(metrics).Build();
        string prefix = "met" + Guid.NewGuid().ToString("N")[..8];
        CeleriacApp app = RunningWorker.NewApp(o => o.Concurrency = 1);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Task(prefix + ".hold", async () =>
        {
            started.TrySetResult();
            await release.Task;
            return 1;
        });
        await using RunningWorker run = await RunningWorker.StartAsync(app);
        AsyncResult first = await app.SendTaskAsync(prefix + ".hold", ct: Ct);
        AsyncResult second = await app.SendTaskAsync(prefix + ".hold", ct: Ct);
        await started.Task.WaitAsync(s_wait, Ct);

        // One runs; the other is prefetched behind it (concurrency 1, prefetch 4).
        Assert.True(await Poll.UntilAsync(() => Gauge(meters, metrics, "celeriac.worker.active", run.Worker.NodeName) == 1 && Gauge(meters, metrics, "celeriac.worker.prefetched", run.Worker.NodeName) == 1, s_wait), Dump(metrics));

        release.SetResult();
        Assert.Equal(1, await first.GetAsync<int>(s_wait, Ct));
        Assert.Equal(1, await second.GetAsync<int>(s_wait, Ct));
        Assert.True(await Poll.UntilAsync(() => Gauge(meters, metrics, "celeriac.worker.active", run.Worker.NodeName) == 0, s_wait), Dump(metrics));
    }

    [Fact]
    public void PublishConfirmsAndRetries_AreCountedBySystem()
    {
        var metrics = new List<Metric>();
        using MeterProvider meters = Sdk.CreateMeterProviderBuilder().AddCeleriacInstrumentation().AddInMemoryExporter(metrics).Build();

        Celeriac.Diagnostics.CeleriacDiagnostics.RecordPublishConfirms("telemetry-test", 5);
        Celeriac.Diagnostics.CeleriacDiagnostics.RecordPublishRetries("telemetry-test", 2);
        meters.ForceFlush();

        Assert.Equal(5, SumWhere(metrics, "celeriac.publish.confirms", "messaging.system", "telemetry-test"));
        Assert.Equal(2, SumWhere(metrics, "celeriac.publish.retries", "messaging.system", "telemetry-test"));
    }

    [Fact]
    public void Instruments_WithoutAListener_AreNotEnabled()
    {
        // A test in this (non-parallel) collection leaves no provider behind, so nothing listens now.
        using var meter = new MeterListener();
        Assert.False(Celeriac.Diagnostics.CeleriacDiagnostics.Source.HasListeners());
        Assert.False(Celeriac.Diagnostics.CeleriacDiagnostics.TaskDuration.Enabled);
        Assert.False(Celeriac.Diagnostics.CeleriacDiagnostics.Tasks.Enabled);
    }

    private static long Count(MeterProvider meters, List<Metric> metrics, string name, string task, string state)
    {
        Collect(meters, metrics);
        return Points(metrics, name).Where(p => Tag(p, "task") == task && Tag(p, "state") == state).Sum(p => p.GetSumLong());
    }

    private static long Gauge(MeterProvider meters, List<Metric> metrics, string name, string worker)
    {
        Collect(meters, metrics);
        return Points(metrics, name).Where(p => Tag(p, "worker") == worker).Select(p => p.GetSumLong()).DefaultIfEmpty(-1).Last();
    }

    private static long HistogramCount(List<Metric> metrics, string name, string? task, string? state, string? taskPrefix = null) =>
        Points(metrics, name)
            .Where(p => (task is null || Tag(p, "task") == task) && (state is null || Tag(p, "state") == state) && (taskPrefix is null || Tag(p, "task")?.StartsWith(taskPrefix, StringComparison.Ordinal) == true))
            .Sum(p => p.GetHistogramCount());

    private static long SumWhere(List<Metric> metrics, string name, string key, string value) =>
        Points(metrics, name).Where(p => Tag(p, key) == value).Sum(p => p.GetSumLong());

    /// <summary>Exports a fresh cumulative snapshot (the list holds only the latest).</summary>
    private static void Collect(MeterProvider meters, List<Metric> metrics)
    {
        lock (metrics)
        {
            metrics.Clear();
        }

        meters.ForceFlush();
    }

    private static List<MetricPoint> Points(List<Metric> metrics, string name)
    {
        var points = new List<MetricPoint>();
        lock (metrics)
        {
            foreach (Metric m in metrics.Where(m => m.Name == name))
            {
                foreach (ref readonly MetricPoint p in m.GetMetricPoints())
                {
                    points.Add(p);
                }
            }
        }

        return points;
    }

    private static string? Tag(MetricPoint point, string key)
    {
        foreach (KeyValuePair<string, object?> tag in point.Tags)
        {
            if (tag.Key == key)
            {
                return tag.Value?.ToString();
            }
        }

        return null;
    }

    private static string Dump(List<Metric> metrics)
    {
        lock (metrics)
        {
            return string.Join(", ", metrics.Select(m => m.Name));
        }
    }
}
