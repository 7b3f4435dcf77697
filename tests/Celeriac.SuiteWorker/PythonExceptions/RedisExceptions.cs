// redis-py's DataError, raised as redis-py raises it when a value it cannot write is pushed (redis_echo of a list).
#pragma warning disable CA1710 // redis-py's name, on purpose: it is the exc_type a Python client sees.
namespace redis.exceptions;

/// <summary>redis-py's <c>DataError</c>.</summary>
public sealed class DataError : Exception
{
    /// <summary>A <c>DataError()</c>.</summary>
    public DataError() : base(string.Empty)
    {
    }

    /// <summary>A <c>DataError(message)</c>.</summary>
    public DataError(string message) : base(message)
    {
    }

    /// <summary>A <c>DataError(message)</c> with a cause.</summary>
    public DataError(string message, Exception innerException) : base(message, innerException)
    {
    }
}
