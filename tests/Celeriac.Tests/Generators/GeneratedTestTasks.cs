using System.ComponentModel.DataAnnotations;
using System.Text.Json;

namespace Celeriac.Tests.Generators;

/// <summary>Tasks of every supported shape, run through generated and reflection invokers alike.</summary>
public static class ParityTasks
{
    [CeleriacTask("gen.add")]
    public static int Add(int x, int y) => x + y;

    [CeleriacTask("gen.greet")]
    public static string GreetMany(string name, string greeting = "hello", int times = 1) =>
        string.Join(" ", Enumerable.Repeat($"{greeting} {name}", times));

    [CeleriacTask("gen.echo")]
    public static JsonElement Echo(JsonElement value) => value;

    [CeleriacTask("gen.echo_object")]
    public static object? EchoObject(object? value) => value;

    [CeleriacTask("gen.sum")]
    public static int Sum(List<int> values) => values.Sum();

    [CeleriacTask("gen.half")]
    public static double Half(double x) => x / 2;

    [CeleriacTask("gen.maybe")]
    public static string Maybe(int? n, string? label = null, long big = 5, bool flag = false) => $"{n?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}:{label ?? "-"}:{big}:{flag}";

    [CeleriacTask("gen.star")]
    public static string Star(string head, params int[] rest) => $"{head}:{string.Join(",", rest)}";

    [CeleriacTask("gen.kw")]
    public static string Kw(int a, IReadOnlyDictionary<string, JsonElement> kwargs) =>
        $"{a}:{string.Join(",", kwargs.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key}={k.Value.GetRawText()}"))}";

    [CeleriacTask("gen.ctx")]
    public static string Ctx(TaskContext context, int x, CancellationToken ct) => $"{context.Name}:{x}:{ct.CanBeCanceled}";

    [CeleriacTask("gen.async")]
    public static async Task<int> AddAsync(int x, int y)
    {
        await Task.Yield();
        return x + y;
    }

    [CeleriacTask("gen.value_async")]
    public static ValueTask<string> Upper(string s) => ValueTask.FromResult(s.ToUpperInvariant());

    [CeleriacTask("gen.void")]
    public static void Nothing(int x)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(x);
    }

    [CeleriacTask("gen.order")]
    public static string PlaceOrder(Order order) => $"{order.Quantity} x {order.Sku}";

    [CeleriacTask("gen.point")]
    public static int Manhattan(Point p) => Math.Abs(p.X) + Math.Abs(p.Y);
}

/// <summary>A model argument validated with DataAnnotations (Celery 5.5's <c>pydantic=True</c>).</summary>
public sealed record Order
{
    /// <summary>The product.</summary>
    [Required]
    [StringLength(8)]
    public string Sku { get; init; } = "";

    /// <summary>How many.</summary>
    [Range(1, 10)]
    public int Quantity { get; init; }
}

/// <summary>A model without validation.</summary>
public sealed record Point(int X, int Y);

/// <summary>A task class with an instance method and a DI service.</summary>
[CeleriacTask("gen.counter")]
public sealed class CounterTask(ICounter counter)
{
    public int Run(int by) => counter.Add(by);
}

/// <summary>A service the counter task takes.</summary>
public interface ICounter
{
    /// <summary>Adds and returns the total.</summary>
    int Add(int by);
}

/// <summary>The counter.</summary>
public sealed class Counter : ICounter
{
    private int _total;

    /// <inheritdoc />
    public int Add(int by) => Interlocked.Add(ref _total, by);
}
