// Python's built-in exceptions that the suite's tasks raise. Celeriac writes a task's exception as Celery's
// {"exc_type": type name, "exc_module": namespace}, so these types, in a namespace named `builtins`, reach a Python
// client as the real ValueError and TypeError (celery.backends.base.exception_to_python looks the class up in
// sys.modules[exc_module]), which is what the suite's `pytest.raises(ValueError)` checks.
#pragma warning disable CA1710 // Python's names, on purpose: they are the exc_type a Python client sees.
namespace builtins;

/// <summary>Python's <c>ValueError</c>.</summary>
public sealed class ValueError : Exception
{
    /// <summary>A <c>ValueError()</c> without arguments (Python's message is empty).</summary>
    public ValueError() : base(string.Empty)
    {
    }

    /// <summary>A <c>ValueError(message)</c>.</summary>
    public ValueError(string message) : base(message)
    {
    }

    /// <summary>A <c>ValueError(message)</c> with a cause.</summary>
    public ValueError(string message, Exception innerException) : base(message, innerException)
    {
    }
}

/// <summary>Python's <c>TypeError</c>.</summary>
public sealed class TypeError : Exception
{
    /// <summary>A <c>TypeError()</c> without arguments.</summary>
    public TypeError() : base(string.Empty)
    {
    }

    /// <summary>A <c>TypeError(message)</c>.</summary>
    public TypeError(string message) : base(message)
    {
    }

    /// <summary>A <c>TypeError(message)</c> with a cause.</summary>
    public TypeError(string message, Exception innerException) : base(message, innerException)
    {
    }
}
