// The suite's own exception, in a namespace named like the Python module that defines it (t/integration/tasks.py):
// a Python client that has imported t.integration.tasks rebuilds it as that module's ExpectedException.
namespace t.integration.tasks;

/// <summary>
/// <c>ExpectedException</c> of <c>t/integration/tasks.py</c>: the sentinel exception of the suite's failing tasks.
/// Python's keeps all its arguments (<c>exc_message</c> is the list of them); Celeriac writes one message, so an
/// exception raised with several arguments arrives with one, <see cref="Exception.Message"/> (their Python tuple repr).
/// </summary>
public sealed class ExpectedException : Exception
{
    /// <summary>An <c>ExpectedException()</c> without arguments.</summary>
    public ExpectedException() : base(string.Empty) => Arguments = [];

    /// <summary>An <c>ExpectedException(message)</c>.</summary>
    public ExpectedException(string message) : base(message) => Arguments = [message];

    /// <summary>An <c>ExpectedException(message)</c> with a cause.</summary>
    public ExpectedException(string message, Exception innerException) : base(message, innerException) => Arguments = [message];

    /// <summary>An <c>ExpectedException(*args)</c>; the message is Python's <c>str()</c> of it.</summary>
    public ExpectedException(IReadOnlyList<object?> arguments) : base(Celeriac.SuiteWorker.Py.StrOfArgs(arguments)) => Arguments = arguments;

    /// <summary>The arguments as Python's <c>args</c>.</summary>
    public IReadOnlyList<object?> Arguments { get; }
}
