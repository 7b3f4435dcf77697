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

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Logging.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory LoggerFactory { get; init; } = Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
}
