using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Transport;

/// <summary>What every transport is built with.</summary>
public sealed class TransportOptions
{
    /// <summary>The broker URL (its scheme picks the implementation).</summary>
    public required Uri Url { get; init; }

    /// <summary>
    /// How long a taken, unsettled message stays invisible to other consumers when its consumer stops
    /// renewing it (a dead worker). Live consumers renew theirs, so long tasks are not delivered twice.
    /// <value>1 hour</value> (kombu's <c>visibility_timeout</c>)
    /// </summary>
    public TimeSpan VisibilityTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How long to try a broker that has never answered before an operation throws <c>BrokerUnreachableException</c>.
    /// <value>5 seconds</value>
    /// </summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Logging.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}
