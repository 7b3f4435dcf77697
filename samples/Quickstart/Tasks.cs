using System.Numerics;
using System.Text.Json;
using Celeriac;

namespace Quickstart;

/// <summary>
/// The demo's tasks, callable from Python Celery as well (<c>app.send_task("tasks.add", (2, 3))</c>).
/// Integers in give integers out and floats stay floats, as they would in Python.
/// </summary>
public static class Tasks
{
    /// <summary>x + y. Overflow is an error, never a wrong answer.</summary>
    [CeleriacTask("tasks.add")]
    public static long Add(long x, long y) => checked(x + y);

    /// <summary>x * y.</summary>
    [CeleriacTask("tasks.mul")]
    public static long Mul(long x, long y) => checked(x * y);

    /// <summary>The sum of a list of numbers: an integer when all are integers (of any size), else a float, as Python's sum.</summary>
    [CeleriacTask("tasks.xsum")]
    public static object XSum(JsonElement[] numbers)
    {
        BigInteger integers = BigInteger.Zero;
        double floats = 0;
        bool anyFloat = false;
        foreach (JsonElement n in numbers)
        {
            if (n.ValueKind != JsonValueKind.Number)
            {
                throw new ArgumentException($"xsum() takes numbers, got {n.ValueKind.ToString().ToLowerInvariant()} {n.GetRawText()}", nameof(numbers));
            }

            string raw = n.GetRawText();
            if (raw.AsSpan().IndexOfAny(".eE") < 0)
            {
                integers += BigInteger.Parse(raw, System.Globalization.CultureInfo.InvariantCulture);
            }
            else
            {
                anyFloat = true;
                floats += n.GetDouble();
            }
        }

        if (anyFloat)
        {
            return floats + (double)integers;
        }

        return integers >= long.MinValue && integers <= long.MaxValue ? (long)integers : integers;
    }

    /// <summary>Fails with exactly <paramref name="message"/>.</summary>
    [CeleriacTask("tasks.fail")]
    public static void Fail(string message) => throw new InvalidOperationException(message);

    /// <summary>Sleeps, honouring cancellation (soft and hard time limits, a cold shutdown), and returns the seconds as given.</summary>
    [CeleriacTask("tasks.sleep")]
    public static async Task<JsonElement> Sleep(JsonElement seconds, CancellationToken ct)
    {
        if (seconds.ValueKind != JsonValueKind.Number || seconds.GetDouble() is var s && (s < 0 || !double.IsFinite(s)))
        {
            throw new ArgumentException($"sleep() takes a number of seconds, 0 or more, got {seconds.GetRawText()}", nameof(seconds));
        }

        await Task.Delay(TimeSpan.FromSeconds(seconds.GetDouble()), ct);
        return seconds;
    }

    /// <summary>
    /// Reports its progress: at each of <paramref name="steps"/> steps it stores the state <c>PROGRESS</c> with meta
    /// <c>{"current": i, "total": steps}</c> (i from 1), sleeps 0.2 s, and at the end returns <paramref name="steps"/>.
    /// </summary>
    [CeleriacTask("tasks.progress")]
    public static async Task<long> Progress(long steps, TaskContext context)
    {
        if (steps is < 0 or > 100_000)
        {
            throw new ArgumentException($"progress() takes 0 to 100000 steps, got {steps}", nameof(steps));
        }

        for (long i = 1; i <= steps; i++)
        {
            await context.UpdateStateAsync("PROGRESS", new Dictionary<string, long> { ["current"] = i, ["total"] = steps }, context.CancellationToken);
            await Task.Delay(TimeSpan.FromSeconds(0.2), context.CancellationToken);
        }

        return steps;
    }

    /// <summary>
    /// Fails its first <paramref name="failures"/> attempts with <see cref="FlakyException"/>, which retries it by itself
    /// (at most 5 retries, 0.2 s apart, no back-off), and returns the attempt that succeeded: 1 + the retries it took.
    /// With more than 5 failures the sixth attempt's <see cref="FlakyException"/> is the result.
    /// </summary>
    [CeleriacTask("tasks.flaky", AutoRetryFor = [typeof(FlakyException)], MaxRetries = 5, DefaultRetryDelaySeconds = 0.2)]
    public static long Flaky(long failures, TaskContext context)
    {
        long attempt = context.Retries + 1L;
        if (attempt <= failures)
        {
            throw new FlakyException($"attempt {attempt} of {failures} planned failures");
        }

        return attempt;
    }

    /// <summary>
    /// Blocks its thread for <paramref name="seconds"/> with <c>Thread.Sleep</c>, ignoring cancellation, and returns the
    /// seconds as given: what a task doing synchronous I/O does to its pool (see the threads and prefork pools).
    /// </summary>
    [CeleriacTask("tasks.block")]
    public static JsonElement Block(JsonElement seconds)
    {
        if (seconds.ValueKind != JsonValueKind.Number || seconds.GetDouble() is var s && (s < 0 || s > 86_400 || !double.IsFinite(s)))
        {
            throw new ArgumentException($"block() takes a number of seconds from 0 to 86400, got {seconds.GetRawText()}", nameof(seconds));
        }

        Thread.Sleep(TimeSpan.FromSeconds(seconds.GetDouble()));
        return seconds;
    }

    /// <summary>
    /// Ends the process that runs it at once (<c>Environment.FailFast</c>): under the prefork pool its child dies and the
    /// task is FAILURE <c>WorkerLostError</c>; under the other pools the whole worker goes down, as Celery's solo pool would.
    /// </summary>
    [CeleriacTask("tasks.crash")]
    public static void Crash() => Environment.FailFast("tasks.crash: ending this process on purpose");

    /// <summary>Returns the id of the process that ran it (a prefork child's, or the worker's).</summary>
    [CeleriacTask("tasks.pid")]
    public static int Pid() => Environment.ProcessId;

    /// <summary>Returns its argument unchanged: big integers stay integers, floats floats.</summary>
    [CeleriacTask("tasks.echo")]
    public static JsonElement? Echo(JsonElement? value) => value;
}
