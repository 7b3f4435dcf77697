using System.Text.Json;
using Celeriac.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac.Tests.App;

/// <summary>How a message's JSON arguments bind to a task's parameters, through a real worker.</summary>
public sealed class ArgumentBindingTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<RunningWorker> StartAsync(Action<CeleriacApp> register, Action<CeleriacOptions>? configure = null)
    {
        CeleriacApp app = RunningWorker.NewApp(configure);
        register(app);
        return await RunningWorker.StartAsync(app);
    }

    private static async Task<TaskResultMeta> RunAsync(RunningWorker w, string name, IReadOnlyList<object?>? args = null, IReadOnlyDictionary<string, object?>? kwargs = null)
    {
        AsyncResult result = await w.App.SendTaskAsync(name, args, kwargs, ct: Ct);
        return await result.WaitAsync(s_wait, Ct);
    }

    private static void Register(CeleriacApp app)
    {
        app.Task("t.add", (int x, int y) => x + y);
        app.Task("t.greet", (string name, string greeting = "hello", int times = 1) => string.Join(" ", Enumerable.Repeat($"{greeting} {name}", times)));
        app.Task("t.echo", (JsonElement value) => value);
        app.Task("t.echo_object", (object? value) => value);
        app.Task("t.sum", (List<int> values) => values.Sum());
        app.Task("t.half", (double x) => x / 2);
    }

    [Fact]
    public async Task Bind_Positional_Succeeds()
    {
        await using RunningWorker w = await StartAsync(Register);

        TaskResultMeta meta = await RunAsync(w, "t.add", [2, 3]);

        Assert.Equal(TaskStates.Success, meta.Status);
        Assert.Equal(5, meta.ResultElement.GetInt32());
    }

    [Fact]
    public async Task Bind_KwargsByName_Succeeds()
    {
        await using RunningWorker w = await StartAsync(Register);

        TaskResultMeta meta = await RunAsync(w, "t.add", kwargs: new Dictionary<string, object?> { ["y"] = 10, ["x"] = 1 });

        Assert.Equal(11, meta.ResultElement.GetInt32());
    }

    [Fact]
    public async Task Bind_DefaultsAndMix_DefaultsHonoured()
    {
        await using RunningWorker w = await StartAsync(Register);

        TaskResultMeta onlyRequired = await RunAsync(w, "t.greet", ["ann"]);
        TaskResultMeta mixed = await RunAsync(w, "t.greet", ["bob"], new Dictionary<string, object?> { ["times"] = 2 });

        Assert.Equal("hello ann", onlyRequired.ResultElement.GetString());
        Assert.Equal("hello bob hello bob", mixed.ResultElement.GetString());
    }

    public static TheoryData<string, object?[]?, Dictionary<string, object?>?, string> BadArguments => new()
    {
        { "missing argument", [2], null, "'y'" },
        { "extra positional", [1, 2, 3], null, "takes 2 positional arguments but 3 were given" },
        { "unexpected kwarg", [1, 2], new() { ["z"] = 3 }, "'z'" },
        { "multiple values", [1, 2], new() { ["x"] = 3 }, "multiple values for argument 'x'" },
        { "string to int", ["two", 3], null, "'x'" },
        { "list to int", [new List<object?> { 1 }, 3], null, "'x'" },
        { "null to int", [null, 3], null, "'x'" },
        { "float to int", [1.5, 3], null, "'x'" },
        { "int overflow", [1, 10_000_000_000L], null, "'y'" },
    };

    [Theory]
    [MemberData(nameof(BadArguments))]
    public async Task Bind_BadArguments_TypeErrorNamingParameterAndWorkerKeepsRunning(string scenario, object?[]? args, Dictionary<string, object?>? kwargs, string expected)
    {
        await using RunningWorker w = await StartAsync(Register);

        TaskResultMeta failed = await RunAsync(w, "t.add", args, kwargs);
        TaskResultMeta next = await RunAsync(w, "t.add", [20, 22]);

        Assert.True(TaskStates.Failure == failed.Status, scenario);
        Assert.Equal("TypeError", failed.Exception!.Type);
        Assert.Equal("builtins", failed.Exception.Module);
        Assert.Contains(expected, failed.Exception.Message, StringComparison.Ordinal);
        Assert.Contains("t.add", failed.Exception.Message, StringComparison.Ordinal);
        Assert.Equal(42, next.ResultElement.GetInt32());
        Assert.False(w.Run.IsCompleted);
    }

    [Fact]
    public async Task Bind_NullToNonNullableReference_TypeError()
    {
        await using RunningWorker w = await StartAsync(Register);

        TaskResultMeta meta = await RunAsync(w, "t.greet", [null]);

        Assert.Equal("TypeError", meta.Exception!.Type);
        Assert.Contains("'name'", meta.Exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bind_ListParameter_BindsJsonList()
    {
        await using RunningWorker w = await StartAsync(Register);

        TaskResultMeta ok = await RunAsync(w, "t.sum", [new List<object?> { 1, 2, 3 }]);
        TaskResultMeta bad = await RunAsync(w, "t.sum", ["nope"]);

        Assert.Equal(6, ok.ResultElement.GetInt32());
        Assert.Equal("TypeError", bad.Exception!.Type);
        Assert.Contains("'values'", bad.Exception.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string> EchoValues =>
    [
        "123456789012345678901234567890",
        "-9223372036854775809",
        "1.5",
        "1.0",
        "-0.0",
        "1e300",
        "\"h\u00e9llo \u2713 \ud83d\ude00\"",
        "{\"nested\": {\"a\": null, \"b\": [1, 2.0, {\"c\": \"d\"}]}, \"e\": []}",
        "[1, 2.5, null, true, \"s\", {\"k\": [1]}]",
        "null",
        "false",
    ];

    [Theory]
    [MemberData(nameof(EchoValues))]
    public async Task Echo_JsonElementParameter_ValueAndPythonTypeKept(string json)
    {
        await using RunningWorker w = await StartAsync(Register);
        JsonElement value = JsonAssert.Parse(json);

        TaskResultMeta meta = await RunAsync(w, "t.echo", [value]);

        Assert.Equal(TaskStates.Success, meta.Status);
        JsonAssert.Equal(value, meta.ResultElement);
    }

    [Theory]
    [MemberData(nameof(EchoValues))]
    public async Task Echo_ObjectParameter_ValueAndPythonTypeKept(string json)
    {
        await using RunningWorker w = await StartAsync(Register);
        JsonElement value = JsonAssert.Parse(json);

        TaskResultMeta meta = await RunAsync(w, "t.echo_object", [value]);

        Assert.Equal(TaskStates.Success, meta.Status);
        JsonAssert.Equal(value, meta.ResultElement);
    }

    [Fact]
    public async Task Result_DoubleWithWholeValue_StaysAFloatForPython()
    {
        await using RunningWorker w = await StartAsync(Register);

        TaskResultMeta meta = await RunAsync(w, "t.half", [4]);

        Assert.Equal("float", JsonAssert.Kind(meta.ResultElement));
        Assert.Equal(2.0, meta.ResultElement.GetDouble());
    }

    [Fact]
    public async Task Inject_CancellationTokenAndContext_ContextDescribesTheRun()
    {
        TaskContext? seen = null;
        bool tokenCancelable = false;
        string? nodeName = null;
        await using RunningWorker w = await StartAsync(
            app => app.Task("t.ctx", (int x, TaskContext context, CancellationToken ct) =>
            {
                seen = context;
                tokenCancelable = ct.CanBeCanceled && ct == context.CancellationToken;
                return x;
            }),
            o => o.NodeName = "ctx@test");
        nodeName = w.Worker.NodeName;
        AsyncResult result = await w.App.SendTaskAsync("t.ctx", [7], options: new ApplyOptions { ParentId = "parent-1", RootId = "root-1", Queue = "celery" }, ct: Ct);

        Assert.Equal(7, await result.GetAsync<int>(s_wait, Ct));
        Assert.NotNull(seen);
        Assert.Equal(result.Id, seen.Id);
        Assert.Equal("t.ctx", seen.Name);
        Assert.Equal(0, seen.Retries);
        Assert.Equal("root-1", seen.RootId);
        Assert.Equal("parent-1", seen.ParentId);
        Assert.Equal("celery", seen.Queue);
        Assert.Equal("ctx@test", seen.Hostname);
        Assert.Equal("ctx@test", nodeName);
        Assert.True(tokenCancelable);
    }

    [Fact]
    public async Task Return_TaskValueTaskAndVoid_AllSucceed()
    {
        int ran = 0;
        await using RunningWorker w = await StartAsync(app =>
        {
            app.Task("t.task", async (int x) => { await Task.Yield(); Interlocked.Increment(ref ran); });
            app.Task("t.task_of", async (int x) => { await Task.Delay(1); return x * 2; });
            app.Task("t.value_task_of", (int x) => new ValueTask<int>(x * 3));
            app.Task("t.void", (int x) => { Interlocked.Increment(ref ran); });
        });

        TaskResultMeta task = await RunAsync(w, "t.task", [1]);
        TaskResultMeta taskOf = await RunAsync(w, "t.task_of", [2]);
        TaskResultMeta valueTaskOf = await RunAsync(w, "t.value_task_of", [3]);
        TaskResultMeta voidResult = await RunAsync(w, "t.void", [4]);

        Assert.Equal(JsonValueKind.Null, task.ResultElement.ValueKind);
        Assert.Equal(4, taskOf.ResultElement.GetInt32());
        Assert.Equal(9, valueTaskOf.ResultElement.GetInt32());
        Assert.Equal(JsonValueKind.Null, voidResult.ResultElement.ValueKind);
        Assert.Equal(2, ran);
        Assert.All(new[] { task, taskOf, valueTaskOf, voidResult }, m => Assert.Equal(TaskStates.Success, m.Status));
    }

    [Fact]
    public async Task Run_TaskThrows_FailureWithDotNetTypeAndNextTaskRuns()
    {
        await using RunningWorker w = await StartAsync(app =>
        {
            app.Task("t.boom", new Func<string, int>(why => throw new InvalidOperationException(why)));
            app.Task("t.add", (int x, int y) => x + y);
        });

        TaskResultMeta failed = await RunAsync(w, "t.boom", ["no luck"]);
        TaskResultMeta next = await RunAsync(w, "t.add", [1, 1]);

        Assert.Equal(TaskStates.Failure, failed.Status);
        Assert.Equal("InvalidOperationException", failed.Exception!.Type);
        Assert.Equal("System", failed.Exception.Module);
        Assert.Equal("no luck", failed.Exception.Message);
        Assert.Contains("InvalidOperationException", failed.Traceback, StringComparison.Ordinal);
        Assert.Equal(2, next.ResultElement.GetInt32());
    }
}
