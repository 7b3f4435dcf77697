namespace Celeriac;

/// <summary>
/// Thrown by <see cref="AsyncResult.GetAsync{T}(TimeSpan?, CancellationToken)"/> when the task failed or
/// was revoked: carries the remote exception's type, module, message and traceback.
/// </summary>
public sealed class TaskFailedException : Exception
{
    /// <summary>Creates the exception for a failed task.</summary>
    public TaskFailedException(string taskId, string state, ExceptionInfo error, string? traceback)
        : base($"{error.Type}: {error.Message}")
    {
        ArgumentNullException.ThrowIfNull(error);
        TaskId = taskId;
        State = state;
        ExceptionType = error.Type;
        ExceptionModule = error.Module;
        RemoteMessage = error.Message;
        RemoteTraceback = traceback;
    }

    /// <summary>Creates an empty instance (for serializers).</summary>
    public TaskFailedException() : this("", TaskStates.Failure, new ExceptionInfo("Exception", "", null), null)
    {
    }

    /// <summary>Creates an instance with a message.</summary>
    public TaskFailedException(string message) : base(message)
    {
        TaskId = "";
        State = TaskStates.Failure;
        ExceptionType = "Exception";
        RemoteMessage = message;
    }

    /// <summary>Creates an instance with a message and inner exception.</summary>
    public TaskFailedException(string message, Exception innerException) : base(message, innerException)
    {
        TaskId = "";
        State = TaskStates.Failure;
        ExceptionType = "Exception";
        RemoteMessage = message;
    }

    /// <summary>The task's id.</summary>
    public string TaskId { get; }

    /// <summary>FAILURE or REVOKED.</summary>
    public string State { get; }

    /// <summary>The remote exception's type name (<c>ValueError</c>, <c>InvalidOperationException</c>).</summary>
    public string ExceptionType { get; }

    /// <summary>The remote exception's module or namespace.</summary>
    public string? ExceptionModule { get; }

    /// <summary>The remote exception's message.</summary>
    public string RemoteMessage { get; }

    /// <summary>The remote traceback or stack trace, when stored.</summary>
    public string? RemoteTraceback { get; }
}
