using System.Text;

namespace Celeriac;

/// <summary>The base of the errors Celeriac raises about its own work (an unreachable broker, a result of another type), so that callers can catch them together.</summary>
public class CeleriacException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CeleriacException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public CeleriacException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    public CeleriacException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

/// <summary>
/// The broker or the result backend could not be reached within the connect timeout
/// (<see cref="CeleriacOptions.BrokerConnectTimeout"/>). Names the store with its password masked and wraps the client
/// library's own error.
/// </summary>
public sealed class BrokerUnreachableException : CeleriacException
{
    /// <summary>Creates the exception for a store that did not answer.</summary>
    /// <param name="maskedUrl">The URL with its password masked (<see cref="UrlText.Mask(Uri)"/>).</param>
    /// <param name="timeout">How long the client tried, when known.</param>
    /// <param name="innerException">The client library's error.</param>
    public BrokerUnreachableException(string maskedUrl, TimeSpan? timeout, Exception? innerException)
        : base(Describe(maskedUrl, timeout, innerException), innerException!)
    {
        Url = maskedUrl;
        Timeout = timeout;
    }

    /// <summary>Creates the exception.</summary>
    public BrokerUnreachableException() : this("", null, null)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public BrokerUnreachableException(string message) : base(message)
    {
        Url = "";
    }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    public BrokerUnreachableException(string message, Exception innerException) : base(message, innerException)
    {
        Url = "";
    }

    /// <summary>The store's URL, password masked.</summary>
    public string Url { get; }

    /// <summary>How long the client tried to connect, when known.</summary>
    public TimeSpan? Timeout { get; }

    private static string Describe(string url, TimeSpan? timeout, Exception? inner)
    {
        var text = new StringBuilder("Cannot reach ").Append(url).Append(" (is it running, and is the address right?");
        if (timeout is { } t)
        {
            text.Append(" connect timeout ").Append(t.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture))
                .Append(" s, CeleriacOptions.BrokerConnectTimeout");
        }

        text.Append(')');
        if (inner is not null)
        {
            text.Append(": ").Append(inner.GetType().Name).Append(": ").Append(FirstLine(inner.Message));
        }

        return text.ToString();
    }

    private static string FirstLine(string message)
    {
        int end = message.IndexOfAny(['\r', '\n']);
        return end < 0 ? message : message[..end];
    }
}

/// <summary>
/// A task's stored result could not be read as the type asked for (<c>GetAsync&lt;int&gt;</c> on a string result):
/// names the task, its id, the type and the JSON that came; wraps the deserializer's error.
/// </summary>
public sealed class ResultTypeException : CeleriacException
{
    private const int MaxJson = 200;

    /// <summary>Creates the exception for a result that did not fit <paramref name="requestedType"/>.</summary>
    public ResultTypeException(string taskId, string? taskName, Type requestedType, string json, Exception? innerException)
        : base(Describe(taskId, taskName, requestedType, json), innerException!)
    {
        ArgumentNullException.ThrowIfNull(requestedType);
        TaskId = taskId;
        TaskName = taskName;
        RequestedType = requestedType;
        Json = json;
    }

    /// <summary>Creates the exception.</summary>
    public ResultTypeException() : this("", null, typeof(object), "", null)
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ResultTypeException(string message) : base(message)
    {
        TaskId = "";
        RequestedType = typeof(object);
        Json = "";
    }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    public ResultTypeException(string message, Exception innerException) : base(message, innerException)
    {
        TaskId = "";
        RequestedType = typeof(object);
        Json = "";
    }

    /// <summary>The task's id.</summary>
    public string TaskId { get; }

    /// <summary>The task's name, when the result backend stored it (extended results) or the handle knows it.</summary>
    public string? TaskName { get; }

    /// <summary>The type the caller asked for.</summary>
    public Type RequestedType { get; }

    /// <summary>The stored result's JSON (whole; the message shows at most 200 characters of it).</summary>
    public string Json { get; }

    private static string Describe(string id, string? name, Type type, string json)
    {
        string shown = json.Length <= MaxJson ? json : json[..MaxJson] + "…";
        string task = name is { Length: > 0 } ? $"task {name} [{id}]" : $"task [{id}]";
        return $"The result of {task} is not a {type.Name}: it is {shown} (read it as that type, or as JsonElement with GetAsync()).";
    }
}
