using System.Diagnostics;
using Celeriac.Tests.Support;
using Celeriac.Transport;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Celeriac.Tests.Telemetry;

/// <summary>Celeriac's spans as an OpenTelemetry exporter sees them: one trace from the client's send through a chain.</summary>
[Collection(TelemetryGroup.Name)]
public sealed class TracingTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("async")]
    [InlineData("threads")]
    public async Task Chain_DotNetToDotNet_IsOneTraceWithPublishAndProcessSpansLinked(string pool)
    {
        var spans = new List<Activity>();
        using TracerProvider tracing = Sdk.CreateTracerProviderBuilder().AddCeleriacInstrumentation().AddInMemoryExporter(spans).Build();
        string prefix = "tel" + Guid.NewGuid().ToString("N")[..8];
        await using RunningWorker run = await RunningWorker.StartAsync(NewApp(prefix, pool, out CeleriacTask add, out CeleriacTask mul, out CeleriacTask sendsOne));

        AsyncResult result = await global::Celeriac.Canvas.Chain(add.S(2, 3), mul.S(10)).ApplyAsync(ct: Ct);

        Assert.Equal(50, await result.GetAsync<int>(s_wait, Ct));
        Assert.True(await Poll.UntilAsync(() => Ended(spans, prefix).Count(a => a.OperationName.StartsWith("run/", StringComparison.Ordinal)) == 2, s_wait), Describe(spans));
        List<Activity> mine = Ended(spans, prefix);
        Activity sendAdd = Single(mine, "apply_async/" + prefix + ".add");
        Activity runAdd = Single(mine, "run/" + prefix + ".add");
        Activity sendMul = Single(mine, "apply_async/" + prefix + ".mul");
        Activity runMul = Single(mine, "run/" + prefix + ".mul");
        Assert.Single(mine.Select(a => a.TraceId).Distinct());
        Assert.Equal(default, sendAdd.ParentSpanId);
        Assert.Equal(sendAdd.SpanId, runAdd.ParentSpanId);
        Assert.Equal(runAdd.SpanId, sendMul.ParentSpanId);
        Assert.Equal(sendMul.SpanId, runMul.ParentSpanId);
        Assert.Equal(ActivityKind.Producer, sendAdd.Kind);
        Assert.Equal(ActivityKind.Consumer, runAdd.Kind);
        Assert.Equal(ActivityStatusCode.Unset, runMul.Status);

        // The conventions: OpenTelemetry's messaging attributes and the Python Celery instrumentation's own.
        Assert.Equal("memory", sendAdd.GetTagItem("messaging.system"));
        Assert.Equal("celery", sendAdd.GetTagItem("messaging.destination.name"));
        Assert.Equal("apply_async", sendAdd.GetTagItem("celery.action"));
        Assert.Equal(prefix + ".add", sendAdd.GetTagItem("celery.task_name"));
        Assert.Equal(runAdd.GetTagItem("messaging.message.id"), sendAdd.GetTagItem("messaging.message.id"));
        Assert.Equal("process", runAdd.GetTagItem("messaging.operation.type"));
        Assert.Equal("run", runAdd.GetTagItem("celery.action"));
        Assert.Equal("SUCCESS", runAdd.GetTagItem("celery.state"));
        Assert.Equal(result.Id, runMul.GetTagItem("messaging.message.id"));

        // The receive span: from the worker's take to the decode, a child of the send as well.
        Activity receiveAdd = Single(mine, "receive/" + prefix + ".add");
        Assert.Equal(sendAdd.SpanId, receiveAdd.ParentSpanId);
        Assert.Equal("receive", receiveAdd.GetTagItem("messaging.operation.type"));

        // A task the task itself sends is a child of its run, whichever pool ran it.
        AsyncResult parent = await sendsOne.DelayAsync();
        string childId = await parent.GetAsync<string>(s_wait, Ct) ?? "";
        Assert.Equal(2, await run.App.AsyncResult(childId).GetAsync<int>(s_wait, Ct));
        Assert.True(await Poll.UntilAsync(() => Ended(spans, prefix).Any(a => a.OperationName.StartsWith("run/", StringComparison.Ordinal) && (string?)a.GetTagItem("messaging.message.id") == childId), s_wait), Describe(spans));
        List<Activity> all = Ended(spans, prefix);
        Activity runSends = Assert.Single(all, a => a.OperationName == "run/" + prefix + ".sends");
        Activity sendChild = Assert.Single(all, a => a.OperationName == "apply_async/" + prefix + ".add" && (string?)a.GetTagItem("messaging.message.id") == childId);
        Assert.Equal(runSends.SpanId, sendChild.ParentSpanId);
        Assert.Equal(runSends.TraceId, sendChild.TraceId);
    }

    [Fact]
    public async Task FailedTask_RunSpan_HasErrorStatusAndExceptionEvent()
    {
        var spans = new List<Activity>();
        using TracerProvider tracing = Sdk.CreateTracerProviderBuilder().AddCeleriacInstrumentation().AddInMemoryExporter(spans).Build();
        string prefix = "tel" + Guid.NewGuid().ToString("N")[..8];
        CeleriacApp app = RunningWorker.NewApp();
        app.Task(prefix + ".boom", int () => throw new InvalidOperationException("it broke"));
        await using RunningWorker run = await RunningWorker.StartAsync(app);

        AsyncResult result = await app.SendTaskAsync(prefix + ".boom", ct: Ct);

        await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<int>(s_wait, Ct));
        Assert.True(await Poll.UntilAsync(() => Ended(spans, prefix).Any(a => a.OperationName.StartsWith("run/", StringComparison.Ordinal)), s_wait), Describe(spans));
        Activity runSpan = Single(Ended(spans, prefix), "run/" + prefix + ".boom");
        Assert.Equal(ActivityStatusCode.Error, runSpan.Status);
        Assert.Equal("it broke", runSpan.StatusDescription);
        Assert.Equal("FAILURE", runSpan.GetTagItem("celery.state"));
        ActivityEvent exception = Assert.Single(runSpan.Events, e => e.Name == "exception");
        Assert.Equal(typeof(InvalidOperationException).FullName, exception.Tags.Single(t => t.Key == "exception.type").Value);
    }

    [Fact]
    public async Task RetriedTask_IsMarked_AndItsRetryRunsInTheSameTrace()
    {
        var spans = new List<Activity>();
        using TracerProvider tracing = Sdk.CreateTracerProviderBuilder().AddCeleriacInstrumentation().AddInMemoryExporter(spans).Build();
        string prefix = "tel" + Guid.NewGuid().ToString("N")[..8];
        CeleriacApp app = RunningWorker.NewApp();
        app.Task(prefix + ".flaky", (TaskContext context) =>
            context.Retries == 0 ? throw new RetryException(new IOException("busy"), TimeSpan.Zero) : "done");
        await using RunningWorker run = await RunningWorker.StartAsync(app);

        AsyncResult result = await app.SendTaskAsync(prefix + ".flaky", ct: Ct);

        Assert.Equal("done", await result.GetAsync<string>(s_wait, Ct));
        Assert.True(await Poll.UntilAsync(() => Ended(spans, prefix).Count(a => a.OperationName.StartsWith("run/", StringComparison.Ordinal)) == 2, s_wait), Describe(spans));
        List<Activity> runs = [.. Ended(spans, prefix).Where(a => a.OperationName.StartsWith("run/", StringComparison.Ordinal)).OrderBy(a => a.StartTimeUtc)];
        Assert.Equal("RETRY", runs[0].GetTagItem("celery.state"));
        Assert.Contains("busy", (string?)runs[0].GetTagItem("celery.retry.reason"), StringComparison.Ordinal);
        Assert.Equal("SUCCESS", runs[1].GetTagItem("celery.state"));
        Assert.Equal(1, runs[1].GetTagItem("celery.retries"));
        Assert.Equal(runs[0].TraceId, runs[1].TraceId);

        // The retry is sent from inside the first run, so its send span is that run's child and the second run's parent.
        Activity resend = Assert.Single(Ended(spans, prefix), a => a.OperationName.StartsWith("apply_async/", StringComparison.Ordinal) && a.ParentSpanId == runs[0].SpanId);
        Assert.Equal(resend.SpanId, runs[1].ParentSpanId);
    }

    [Fact]
    public async Task Message_WithATraceparentHeader_ItsRunSpanIsThatContextsChild()
    {
        // What a Python client instrumented by opentelemetry-instrumentation-celery sends: traceparent among the
        // message's top-level headers. Published raw, so no Celeriac send span is in between.
        var spans = new List<Activity>();
        using TracerProvider tracing = Sdk.CreateTracerProviderBuilder().AddCeleriacInstrumentation().AddInMemoryExporter(spans).Build();
        string prefix = "tel" + Guid.NewGuid().ToString("N")[..8];
        CeleriacApp app = RunningWorker.NewApp();
        app.Task(prefix + ".echo", (int x) => x);
        await using RunningWorker run = await RunningWorker.StartAsync(app);
        var traceId = ActivityTraceId.CreateRandom();
        var parentId = ActivitySpanId.CreateRandom();
        TransportMessage message = app.BuildMessage(prefix + ".echo", [7], null, null, out string queue);
        message.Headers["traceparent"] = $"00-{traceId}-{parentId}-01";
        message.Headers["tracestate"] = "vendor=python";

        await app.Transport.PublishAsync("", queue, [message], Ct);

        Assert.Equal(7, await new AsyncResult(message.CorrelationId!, app.ResultBackend) { App = app }.GetAsync<int>(s_wait, Ct));
        Assert.True(await Poll.UntilAsync(() => Ended(spans, prefix).Any(a => a.OperationName.StartsWith("run/", StringComparison.Ordinal)), s_wait), Describe(spans));
        Activity runSpan = Single(Ended(spans, prefix), "run/" + prefix + ".echo");
        Assert.Equal(traceId, runSpan.TraceId);
        Assert.Equal(parentId, runSpan.ParentSpanId);
        Assert.Equal("vendor=python", runSpan.TraceStateString);
    }

    [Fact]
    public async Task Publish_WithATrace_PutsTraceparentInTheTopLevelHeaders()
    {
        var spans = new List<Activity>();
        using TracerProvider tracing = Sdk.CreateTracerProviderBuilder().AddCeleriacInstrumentation().AddInMemoryExporter(spans).Build();
        CeleriacApp app = RunningWorker.NewApp();
        RecordingTransport? transport = null;
        app.Providers.AddTransport("memory", o => transport = new RecordingTransport(new MemoryTransport(o.Url)));
        await using (app)
        {
            AsyncResult sent = await app.SendTaskAsync("tasks.add", [1, 2], ct: Ct);

            TransportMessage raw = Assert.Single(transport!.Published, p => p.RoutingKey == "celery").Message;
            Activity send = Assert.Single(spans, a => a.OperationName == "apply_async/tasks.add" && (string?)a.GetTagItem("messaging.message.id") == sent.Id);
            Assert.Equal(send.Id, raw.Headers["traceparent"]);
            Assert.False(raw.Headers.ContainsKey("tracestate"));
        }
    }

    [Fact]
    public async Task Publish_WithoutAnyListenerOrTrace_AddsNoHeader()
    {
        Assert.Null(Activity.Current);
        CeleriacApp app = RunningWorker.NewApp();
        RecordingTransport? transport = null;
        app.Providers.AddTransport("memory", o => transport = new RecordingTransport(new MemoryTransport(o.Url)));
        await using (app)
        {
            await app.SendTaskAsync("tasks.add", [1, 2], ct: Ct);

            TransportMessage raw = Assert.Single(transport!.Published, p => p.RoutingKey == "celery").Message;
            Assert.False(raw.Headers.ContainsKey("traceparent"));
        }
    }

    private static CeleriacApp NewApp(string prefix, string pool, out CeleriacTask add, out CeleriacTask mul, out CeleriacTask sendsOne)
    {
        CeleriacApp app = RunningWorker.NewApp(o => o.Pool = pool);
        add = app.Task(prefix + ".add", (int x, int y) => x + y);
        mul = app.Task(prefix + ".mul", (int x, int y) => x * y);
        sendsOne = app.Task(prefix + ".sends", async (TaskContext context) => (await context.App!.SendTaskAsync(prefix + ".add", [1, 1])).Id);
        return app;
    }

    private static List<Activity> Ended(List<Activity> spans, string prefix)
    {
        lock (spans)
        {
            return [.. spans.Where(a => a.GetTagItem("celery.task_name") is string n && n.StartsWith(prefix, StringComparison.Ordinal))];
        }
    }

    private static Activity Single(List<Activity> spans, string name) => Assert.Single(spans, a => a.OperationName == name);

    private static string Describe(List<Activity> spans)
    {
        lock (spans)
        {
            return string.Join("; ", spans.Select(a => $"{a.OperationName} {a.SpanId} <- {a.ParentSpanId}"));
        }
    }
}
