using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Celeriac.Protocol;
using Celeriac.Transport;

namespace Celeriac.Benchmarks;

/// <summary>The task the invoker benchmark binds and calls: <c>tasks.add</c> as the Quickstart has it.</summary>
public static class InvokeTasks
{
    /// <summary>Adds two numbers.</summary>
    [CeleriacTask("bench.invoke_add")]
    public static long Add(long x, long y) => x + y;
}

/// <summary>
/// Bind + invoke of <c>tasks.add</c> from a decoded message's JSON args (<c>[2, 3]</c>) and kwargs: the reflection
/// invoker (a compiled expression over an <c>object[]</c>) against the generated one. Run with
/// <c>dotnet run -c Release --project benchmarks/Celeriac.Benchmarks -- invokers</c>.
/// </summary>
[Config(typeof(InvokerBenchmarkConfig))]
[MemoryDiagnoser]
public class InvokerBenchmarks : IDisposable
{
    /// <summary>Runs these benchmarks; in a method of its own so that the worker mode never loads BenchmarkDotNet.</summary>
    public static void Run(string[] args) => BenchmarkDotNet.Running.BenchmarkRunner.Run<InvokerBenchmarks>(args: args);

    private CeleriacApp _app = null!;
    private TaskMessage _positional = null!;
    private TaskMessage _keywords = null!;
    private TaskContext _context = null!;
    private TaskInvoker _reflection = null!;
    private TaskInvoker _generated = null!;

    /// <summary>Builds the messages and both invokers once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://bench-invoke" });
        CeleriacTasks.AddTo(_app);
        _app.Tasks.TryGet("bench.invoke_add", out CeleriacTask? generated);
        _generated = generated!.Invoker!;
        _reflection = new ReflectionTaskInvoker("bench.invoke_add", typeof(InvokeTasks).GetMethod(nameof(InvokeTasks.Add))!, null, typeof(InvokeTasks));
        _positional = Decode(_app.BuildMessage("bench.invoke_add", [2, 3], null, new ApplyOptions(), out string queue));
        _keywords = Decode(_app.BuildMessage("bench.invoke_add", null, new Dictionary<string, object?> { ["y"] = 3, ["x"] = 2 }, new ApplyOptions(), out _));
        _context = new TaskContext(_positional, queue, "bench", CancellationToken.None);
    }

    private static TaskMessage Decode(TransportMessage m) =>
        TaskMessage.TryDecode(m, out TaskMessage? task, out _, out _, out string? error) ? task! : throw new InvalidOperationException(error);

    /// <summary>Positional arguments, reflection invoker.</summary>
    [Benchmark(Baseline = true)]
    public object? ReflectionPositional() => Done(_reflection.InvokeAsync(_positional, _context, null));

    /// <summary>Positional arguments, generated invoker.</summary>
    [Benchmark]
    public object? GeneratedPositional() => Done(_generated.InvokeAsync(_positional, _context, null));

    /// <summary>Keyword arguments, reflection invoker.</summary>
    [Benchmark]
    public object? ReflectionKeywords() => Done(_reflection.InvokeAsync(_keywords, _context, null));

    /// <summary>Keyword arguments, generated invoker.</summary>
    [Benchmark]
    public object? GeneratedKeywords() => Done(_generated.InvokeAsync(_keywords, _context, null));

    // tasks.add is synchronous: its value task has completed when InvokeAsync returns.
    private static object? Done(ValueTask<object?> run) => run.IsCompletedSuccessfully ? run.Result : throw new InvalidOperationException("tasks.add did not complete synchronously");

    /// <inheritdoc />
    public void Dispose()
    {
        _positional?.Dispose();
        _keywords?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Disposes the app.</summary>
    [GlobalCleanup]
    public void Cleanup() => _app.DisposeAsync().AsTask().GetAwaiter().GetResult();
}

/// <summary>In-process (no separate benchmark project build) and short: the figures are for comparison, not absolutes.</summary>
public sealed class InvokerBenchmarkConfig : ManualConfig
{
    /// <summary>Creates the config.</summary>
    public InvokerBenchmarkConfig()
    {
        AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
    }
}
