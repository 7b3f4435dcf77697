namespace Celeriac.Concurrency;

/// <summary>The pool names Celery's <c>-P</c> takes, and what each means here.</summary>
public static class PoolNames
{
    /// <summary>The default: tasks run in the worker's async flow.</summary>
    public const string Async = "async";

    /// <summary>A dedicated thread per slot.</summary>
    public const string Threads = "threads";

    /// <summary>Child processes.</summary>
    public const string Prefork = "prefork";

    /// <summary>One task at a time, inline.</summary>
    public const string Solo = "solo";

    /// <summary>The canonical name of <paramref name="name"/> (<c>processes</c> is <c>prefork</c>; <c>eventlet</c>, <c>gevent</c> are <c>async</c>), or null.</summary>
    public static string? Canonical(string? name) => name?.Trim().ToUpperInvariant() switch
    {
        "ASYNC" or "EVENTLET" or "GEVENT" => Async,
        "THREADS" => Threads,
        "PREFORK" or "PROCESSES" => Prefork,
        "SOLO" => Solo,
        _ => null,
    };

    /// <summary>Whether <paramref name="name"/> is a pool name Celeriac takes.</summary>
    public static bool IsKnown(string? name) => Canonical(name) is not null;

    /// <summary>Whether <paramref name="name"/> is one of Python's green-thread pools, which Celeriac runs as async.</summary>
    public static bool IsGreen(string? name) =>
        string.Equals(name?.Trim(), "eventlet", StringComparison.OrdinalIgnoreCase) || string.Equals(name?.Trim(), "gevent", StringComparison.OrdinalIgnoreCase);
}
