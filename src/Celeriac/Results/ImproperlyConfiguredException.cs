namespace Celeriac;

/// <summary>
/// A canvas or configuration that cannot work (Celery's <c>ImproperlyConfigured</c>, and it travels as that:
/// <c>celery.exceptions.ImproperlyConfigured</c>), e.g. replacing a task with an empty chain.
/// </summary>
public sealed class ImproperlyConfiguredException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public ImproperlyConfiguredException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ImproperlyConfiguredException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public ImproperlyConfiguredException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
