using System.Diagnostics;
using System.Text.Json;
using Celeriac.InteropTests.Redis;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Celeriac.InteropTests.Telemetry;

/// <summary>Tests that turn tracing on run alone: a listener makes every publish in the process carry a traceparent.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TracingGroup
{
    public const string Name = "Tracing";
}

/// <summary>
/// The trace context crosses between Python Celery 5.2 and Celeriac where OpenTelemetry's Celery instrumentation for
/// Python puts and finds it. Its Python packages are not installed here (PyPI is out of reach), so the Python side
/// does by hand what the instrumentation does: its <c>before_task_publish</c> handler injects W3C
/// <c>traceparent</c>/<c>tracestate</c> into the message's headers, and its worker reads them back as attributes of
/// <c>task.request</c>.
/// </summary>
[Collection(TracingGroup.Name)]
public sealed class TraceContextInteropTests(RedisInteropFixture fx) : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => await fx.EnsureCeleriacWorkerAsync();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task PythonClient_InjectingTraceparentAsTheInstrumentationDoes_CeleriacRunSpanIsItsChild()
    {
        var spans = new List<Activity>();
        using TracerProvider tracing = Sdk.CreateTracerProviderBuilder().AddCeleriacInstrumentation().AddInMemoryExporter(spans).Build();
        var traceId = ActivityTraceId.CreateRandom();
        var publishSpanId = ActivitySpanId.CreateRandom();
        string traceparent = $"00-{traceId}-{publishSpanId}-01";

        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery.signals import before_task_publish
            from interop_tasks import add

            # opentelemetry-instrumentation-celery's _trace_before_publish: inject(headers) into these headers.
            @before_task_publish.connect
            def inject(headers=None, **kwargs):
                headers['traceparent'] = sys.argv[2]
                headers['tracestate'] = 'py=celery'

            r = add.apply_async((20, 22), queue=sys.argv[1])
            print(json.dumps({'id': r.id, 'value': r.get(timeout=30)}))
            """, RedisInteropFixture.CeleriacQueue, traceparent);

        using JsonDocument doc = JsonDocument.Parse(output);
        string id = doc.RootElement.GetProperty("id").GetString()!;
        Assert.Equal(42, doc.RootElement.GetProperty("value").GetInt32());
        Assert.True(await PollAsync(() => RunSpanOf(spans, id) is not null), Describe(spans));
        Activity run = RunSpanOf(spans, id)!;
        Assert.Equal("run/tasks.add", run.OperationName);
        Assert.Equal(traceId, run.TraceId);
        Assert.Equal(publishSpanId, run.ParentSpanId);
        Assert.Equal("py=celery", run.TraceStateString);
        Assert.Equal("redis", run.GetTagItem("messaging.system"));
    }

    [Fact]
    public async Task CeleriacClient_PythonWorkerFindsTraceparentWhereTheInstrumentationExtractsIt()
    {
        var spans = new List<Activity>();
        using TracerProvider tracing = Sdk.CreateTracerProviderBuilder().AddCeleriacInstrumentation().AddInMemoryExporter(spans).Build();

        AsyncResult result = await fx.Client.SendTaskAsync("tasks.trace_context", options: new ApplyOptions { Queue = RedisInteropFixture.PythonQueue }, ct: Ct);

        JsonElement seen = await result.GetAsync<JsonElement>(s_wait, Ct);
        Activity publish;
        lock (spans)
        {
            publish = Assert.Single(spans, a => a.OperationName == "apply_async/tasks.trace_context" && (string?)a.GetTagItem("messaging.message.id") == result.Id);
        }

        Assert.Equal(publish.Id, seen.GetProperty("traceparent").GetString());
        Assert.Equal(JsonValueKind.Null, seen.GetProperty("tracestate").ValueKind);
        Assert.StartsWith($"00-{publish.TraceId}-{publish.SpanId}-", seen.GetProperty("traceparent").GetString(), StringComparison.Ordinal);
    }

    private static Activity? RunSpanOf(List<Activity> spans, string id)
    {
        lock (spans)
        {
            return spans.FirstOrDefault(a => a.OperationName.StartsWith("run/", StringComparison.Ordinal) && (string?)a.GetTagItem("messaging.message.id") == id);
        }
    }

    private static async Task<bool> PollAsync(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < s_wait)
        {
            await Task.Delay(50, Ct);
        }

        return condition();
    }

    private static string Describe(List<Activity> spans)
    {
        lock (spans)
        {
            return string.Join("; ", spans.Select(a => $"{a.OperationName} {a.TraceId} {a.ParentSpanId}"));
        }
    }
}
