namespace Celeriac;

// In Results, beside ExceptionInfo that encodes it as Celery's ValidationError (Results does not depend on App).
/// <summary>
/// A model argument failed its DataAnnotations validation; stored as Celery's <c>ValidationError</c> (as pydantic's
/// is with <c>pydantic=True</c>), its message naming each field: <c>Quantity: The field Quantity must be between 1 and 10.</c>
/// </summary>
public sealed class TaskValidationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TaskValidationException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public TaskValidationException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public TaskValidationException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a task's parameter and the fields that failed.</summary>
    public TaskValidationException(string message, string taskName, string parameterName, IReadOnlyList<string> fields) : base(message)
    {
        TaskName = taskName;
        ParameterName = parameterName;
        Fields = fields;
    }

    /// <summary>The task whose argument failed.</summary>
    public string? TaskName { get; }

    /// <summary>The parameter whose argument failed.</summary>
    public string? ParameterName { get; }

    /// <summary>The fields that failed.</summary>
    public IReadOnlyList<string> Fields { get; } = [];
}
