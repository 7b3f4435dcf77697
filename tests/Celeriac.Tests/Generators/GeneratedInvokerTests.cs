using System.Reflection;
using System.Text.Json;
using Celeriac.Protocol;
using Celeriac.Results;
using Celeriac.Tests.Support;
using Celeriac.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace Celeriac.Tests.Generators;

/// <summary>The reflection invoker's count is process-wide: nothing else may run tasks while these tests count it.</summary>
[CollectionDefinition(nameof(ReflectionCountGroup), DisableParallelization = true)]
public sealed class ReflectionCountGroup;

/// <summary>Generated invokers: what the worker registers and runs, and that they bind as the reflection invoker does.</summary>
[Collection(nameof(ReflectionCountGroup))]
public sealed class GeneratedInvokerTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string, string, string> Cases => new()
    {
        { "gen.add", nameof(ParityTasks.Add), "[2, 3]", "{}" },
        { "gen.add", nameof(ParityTasks.Add), "[]", """{"y": 10, "x": 1}""" },
        { "gen.add", nameof(ParityTasks.Add), "[1]", """{"y": 2}""" },
        { "gen.add", nameof(ParityTasks.Add), "[1, 2, 3]", "{}" },
        { "gen.add", nameof(ParityTasks.Add), "[1]", "{}" },
        { "gen.add", nameof(ParityTasks.Add), "[1]", """{"x": 2}""" },
        { "gen.add", nameof(ParityTasks.Add), "[1]", """{"z": 2}""" },
        { "gen.add", nameof(ParityTasks.Add), """["two", 3]""", "{}" },
        { "gen.add", nameof(ParityTasks.Add), "[null, 3]", "{}" },
        { "gen.add", nameof(ParityTasks.Add), "[2.5, 3]", "{}" },
        { "gen.add", nameof(ParityTasks.Add), "[4294967296, 3]", "{}" },
        { "gen.greet", nameof(ParityTasks.GreetMany), """["ann"]""", "{}" },
        { "gen.greet", nameof(ParityTasks.GreetMany), """["ann"]""", """{"times": 2}""" },
        { "gen.greet", nameof(ParityTasks.GreetMany), """["ann", "hi", 3]""", "{}" },
        { "gen.greet", nameof(ParityTasks.GreetMany), "[null]", "{}" },
        { "gen.echo", nameof(ParityTasks.Echo), """[{"a": [1, 2.5, null]}]""", "{}" },
        { "gen.echo", nameof(ParityTasks.Echo), "[null]", "{}" },
        { "gen.echo_object", nameof(ParityTasks.EchoObject), """[{"a": [1, "b"]}]""", "{}" },
        { "gen.echo_object", nameof(ParityTasks.EchoObject), "[null]", "{}" },
        { "gen.sum", nameof(ParityTasks.Sum), "[[1, 2, 3]]", "{}" },
        { "gen.sum", nameof(ParityTasks.Sum), """[["a"]]""", "{}" },
        { "gen.sum", nameof(ParityTasks.Sum), "[7]", "{}" },
        { "gen.half", nameof(ParityTasks.Half), "[3]", "{}" },
        { "gen.half", nameof(ParityTasks.Half), """["3"]""", "{}" },
        { "gen.maybe", nameof(ParityTasks.Maybe), "[null]", "{}" },
        { "gen.maybe", nameof(ParityTasks.Maybe), """[4, "x", 9007199254740993, true]""", "{}" },
        { "gen.maybe", nameof(ParityTasks.Maybe), "[4]", """{"flag": "yes"}""" },
        { "gen.star", nameof(ParityTasks.Star), """["h", 1, 2, 3]""", "{}" },
        { "gen.star", nameof(ParityTasks.Star), """["h"]""", "{}" },
        { "gen.star", nameof(ParityTasks.Star), """["h", "x"]""", "{}" },
        { "gen.kw", nameof(ParityTasks.Kw), "[1]", """{"b": 2, "c": [3]}""" },
        { "gen.kw", nameof(ParityTasks.Kw), "[]", """{"a": 5}""" },
        { "gen.ctx", nameof(ParityTasks.Ctx), "[3]", "{}" },
        { "gen.async", nameof(ParityTasks.AddAsync), "[3, 4]", "{}" },
        { "gen.value_async", nameof(ParityTasks.Upper), """["abc"]""", "{}" },
        { "gen.void", nameof(ParityTasks.Nothing), "[1]", "{}" },
        { "gen.void", nameof(ParityTasks.Nothing), "[-1]", "{}" },
        { "gen.order", nameof(ParityTasks.PlaceOrder), """[{"Sku": "AB", "Quantity": 2}]""", "{}" },
        { "gen.order", nameof(ParityTasks.PlaceOrder), "[]", """{"Sku": "AB", "Quantity": 3}""" },
        { "gen.order", nameof(ParityTasks.PlaceOrder), "[]", """{"order": {"Sku": "AB", "Quantity": 4}}""" },
        { "gen.order", nameof(ParityTasks.PlaceOrder), "[]", """{"Sku": "AB", "Quantity": 11}""" },
        { "gen.order", nameof(ParityTasks.PlaceOrder), """[{"Sku": "TOOLONGSKU", "Quantity": 0}]""", "{}" },
        { "gen.order", nameof(ParityTasks.PlaceOrder), """["AB"]""", "{}" },
        { "gen.point", nameof(ParityTasks.Manhattan), """[{"X": -2, "Y": 3}]""", "{}" },
        { "gen.point", nameof(ParityTasks.Manhattan), "[]", """{"X": 1, "Y": 1}""" },
        { "gen.counter", "Run", "[5]", "{}" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Generated_SameOutcomeAsReflection(string task, string method, string args, string kwargs)
    {
        await using CeleriacApp app = RunningWorker.NewApp();
        CeleriacTasks.AddTo(app);
        Assert.True(app.Tasks.TryGet(task, out CeleriacTask? registered));
        TaskInvoker generated = registered.Invoker!;
        Type declaring = task == "gen.counter" ? typeof(CounterTask) : typeof(ParityTasks);
        MethodInfo info = declaring.GetMethod(method)!;
        var reflection = new ReflectionTaskInvoker(task, info, null, declaring);

        string viaGenerated = await OutcomeAsync(app, generated, task, args, kwargs);
        string viaReflection = await OutcomeAsync(app, reflection, task, args, kwargs);

        Assert.Equal(viaReflection, viaGenerated);
        Assert.Equal(reflection.NeedsServices, generated.NeedsServices);
        Assert.Equal(reflection.Parameters, generated.Parameters);
    }

    [Fact]
    public async Task Parity_ValidationFailure_NamesTheField()
    {
        await using CeleriacApp app = RunningWorker.NewApp();
        CeleriacTasks.AddTo(app);
        Assert.True(app.Tasks.TryGet("gen.order", out CeleriacTask? registered));

        string outcome = await OutcomeAsync(app, registered.Invoker!, "gen.order", "[]", """{"Sku": "AB", "Quantity": 11}""");

        Assert.Equal("TaskValidationException: Quantity: The field Quantity must be between 1 and 10.", outcome);
    }

    [Fact]
    public async Task AddTasksFromAssembly_RegistersGeneratedInvokers()
    {
        await using CeleriacApp app = RunningWorker.NewApp();

        int count = app.AddTasksFromAssembly(typeof(ParityTasks).Assembly);

        Assert.True(count >= 16, $"registered {count}");
        foreach (string name in new[] { "gen.add", "gen.counter", "di.greet", "di.scoped_counter" })
        {
            Assert.True(app.Tasks.TryGet(name, out CeleriacTask? task), name);
            Assert.Equal("Celeriac.Generated", task.Invoker!.GetType().Namespace);
            Assert.IsNotType<ReflectionTaskInvoker>(task.Invoker);
        }
    }

    [Fact]
    public async Task Worker_RunsGeneratedInvokers_NoReflectionInvoke()
    {
        CeleriacApp app = RunningWorker.NewApp(o => o.Services = new ServiceCollection().AddSingleton<ICounter, Counter>().BuildServiceProvider());
        app.AddTasksFromAssembly(typeof(ParityTasks).Assembly);
        await using RunningWorker w = await RunningWorker.StartAsync(app);
        var tasks = new CeleriacTasks(app);
        long before = ReflectionTaskInvoker.Invocations;

        AsyncResult<int> add = await tasks.Add.DelayAsync(2, 3, Ct);
        AsyncResult<int> asyncAdd = await tasks.AddAsync.DelayAsync(20, 22, Ct);
        AsyncResult<string> greet = await tasks.GreetMany.ApplyAsync("ann", times: 2, ct: Ct);
        AsyncResult<int> counter = await tasks.Counter.DelayAsync(7, Ct);
        AsyncResult<string> order = await tasks.PlaceOrder.DelayAsync(new Order { Sku = "AB", Quantity = 2 }, Ct);

        Assert.Equal(5, await add.GetAsync(s_wait, Ct));
        Assert.Equal(42, await asyncAdd.GetAsync(s_wait, Ct));
        Assert.Equal("hello ann hello ann", await greet.GetAsync(s_wait, Ct));
        Assert.Equal(7, await counter.GetAsync(s_wait, Ct));
        Assert.Equal("2 x AB", await order.GetAsync(s_wait, Ct));
        Assert.Equal(before, ReflectionTaskInvoker.Invocations);

        // The counter does count: a delegate task (reflection) run on the same worker moves it.
        app.Task("gen.delegate", (int x) => x + 1);
        AsyncResult viaDelegate = await app.SendTaskAsync("gen.delegate", [1], ct: Ct);
        Assert.Equal(2, await viaDelegate.GetAsync<int>(s_wait, Ct));
        Assert.Equal(before + 1, ReflectionTaskInvoker.Invocations);
    }

    [Fact]
    public async Task Worker_ValidationFailure_IsValidationErrorNamingTheField()
    {
        CeleriacApp app = RunningWorker.NewApp();
        CeleriacTasks.AddTo(app);
        app.Task("gen.order_reflection", (Order order) => order.Quantity);
        await using RunningWorker w = await RunningWorker.StartAsync(app);

        AsyncResult generated = await app.SendTaskAsync("gen.order", kwargs: new Dictionary<string, object?> { ["Sku"] = "AB", ["Quantity"] = 11 }, ct: Ct);
        AsyncResult reflected = await app.SendTaskAsync("gen.order_reflection", [new Order { Sku = "", Quantity = 0 }], ct: Ct);

        TaskResultMeta g = await generated.WaitAsync(s_wait, Ct);
        TaskResultMeta r = await reflected.WaitAsync(s_wait, Ct);
        Assert.Equal(TaskStates.Failure, g.Status);
        Assert.Equal(TaskStates.Failure, r.Status);
        ExceptionInfo ge = ExceptionInfo.Read(g.ResultElement);
        ExceptionInfo re = ExceptionInfo.Read(r.ResultElement);
        Assert.Equal("ValidationError", ge.Type);
        Assert.Equal("Quantity: The field Quantity must be between 1 and 10.", ge.Message);
        Assert.Equal("ValidationError", re.Type);
        Assert.Contains("Sku: The Sku field is required.", re.Message, StringComparison.Ordinal);
        Assert.Contains("Quantity: The field Quantity must be between 1 and 10.", re.Message, StringComparison.Ordinal);
    }

    private static async Task<string> OutcomeAsync(CeleriacApp app, TaskInvoker invoker, string task, string args, string kwargs)
    {
        using JsonDocument a = JsonDocument.Parse(args);
        using JsonDocument k = JsonDocument.Parse(kwargs);
        TransportMessage transport = app.BuildMessage(
            task,
            [.. a.RootElement.EnumerateArray().Select(e => (object?)e.Clone())],
            k.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone(), StringComparer.Ordinal),
            new ApplyOptions(),
            out string queue);
        Assert.True(TaskMessage.TryDecode(transport, out TaskMessage? message, out _, out _, out string? error), error);
        using (message)
        {
            var context = new TaskContext(message!, queue, "test-host", Ct);
            using ServiceProvider services = new ServiceCollection().AddSingleton<ICounter, Counter>().BuildServiceProvider();
            try
            {
                object? result = await invoker.InvokeAsync(message!, context, services);
                return "ok: " + JsonSerializer.Serialize(result, CeleryJson.Options);
            }
            catch (Exception ex)
            {
                return $"{ex.GetType().Name}: {ex.Message}";
            }
        }
    }
}
