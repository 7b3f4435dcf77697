using Celeriac;

namespace AotWorker;

/// <summary>The Quickstart's arithmetic tasks, as a NativeAOT worker serves them.</summary>
public static class Tasks
{
    /// <summary>Adds two numbers.</summary>
    [CeleriacTask("tasks.add")]
    public static long Add(long x, long y) => x + y;

    /// <summary>Multiplies two numbers.</summary>
    [CeleriacTask("tasks.mul")]
    public static long Mul(long x, long y) => x * y;

    /// <summary>Fails on purpose.</summary>
    [CeleriacTask("tasks.fail")]
    public static void Fail(string message) => throw new InvalidOperationException(message);
}
