namespace Quickstart;

/// <summary>The planned failure of <c>tasks.flaky</c>; the task retries itself on it.</summary>
public sealed class FlakyException : Exception
{
    /// <summary>Creates the exception.</summary>
    public FlakyException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FlakyException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public FlakyException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
