namespace Celeriac.Results;

/// <summary>What every result backend is built with.</summary>
public sealed class ResultBackendOptions
{
    /// <summary>The backend URL (its scheme picks the implementation).</summary>
    public required Uri Url { get; init; }

    /// <summary>How long a stored result lives; <see langword="null"/> keeps it. <value>1 day</value> (Celery's <c>result_expires</c>)</summary>
    public TimeSpan? ResultExpires { get; init; } = TimeSpan.FromDays(1);

    /// <summary>The longest pause between two reads while waiting without a change signal. <value>500 ms</value></summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The broker's URL, for a backend that sends results through the broker (rpc://).</summary>
    public Uri? BrokerUrl { get; init; }

    /// <summary>This client's reply queue (its oid, the <c>reply_to</c> of the tasks it sends), for rpc://.</summary>
    public string? ReplyTo { get; init; }

    /// <summary>Whether results carry Celery's extended fields (<c>result_extended</c>), for stores with a column each.</summary>
    public bool ResultExtended { get; init; }

    /// <summary>The backend's own settings under Celery's names (<c>CeleriacOptions.ResultBackendSettings</c>).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// A backend setting by Celery's name: the URL's query parameter of that name, else <see cref="Settings"/>' entry,
    /// else <see langword="null"/>.
    /// </summary>
    public string? Setting(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string query = Url.Query;
        foreach (string pair in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            string key = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                return eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' '));
            }
        }

        return Settings.TryGetValue(name, out string? value) ? value : null;
    }

    /// <summary>
    /// How long to try a store that has never answered before an operation throws <c>BrokerUnreachableException</c>.
    /// <value>5 seconds</value>
    /// </summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Logging.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory LoggerFactory { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
}
