namespace Celeriac.Memcached;

/// <summary>memcached could not do what was asked: it is unreachable, it did not answer in time, or it refused the command.</summary>
public sealed class MemcachedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MemcachedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public MemcachedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public MemcachedException(string message, Exception inner)
        : base(message, inner)
    {
    }

    internal MemcachedException(string message, bool transient, bool sent, Exception? inner = null)
        : base(message, inner)
    {
        IsTransient = transient;
        WasSent = sent;
    }

    /// <summary>Whether the server was away or slow (trying again later may succeed), rather than refusing the command.</summary>
    public bool IsTransient { get; }

    /// <summary>Whether the command may have reached the server before the connection failed (so it may have been applied).</summary>
    internal bool WasSent { get; }
}
