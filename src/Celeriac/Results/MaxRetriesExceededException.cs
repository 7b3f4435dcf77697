// In Results/ beside the other errors that travel in result documents (ExceptionInfo encodes it), so that
// Results need not reach up into App; the root namespace users catch it from is kept.
namespace Celeriac;

/// <summary>
/// A task asked for a retry past its <see cref="TaskOptions.MaxRetries"/> without a reason of its own: this is then
/// its error. It travels as Celery's <c>celery.exceptions.MaxRetriesExceededError</c>.
/// </summary>
public sealed class MaxRetriesExceededException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MaxRetriesExceededException()
    {
    }

    /// <summary>Creates the exception with Celery's message (<c>Can't retry tasks.x[id] args:(1,) kwargs:{}</c>).</summary>
    public MaxRetriesExceededException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public MaxRetriesExceededException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
