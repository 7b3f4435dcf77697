using System.Threading.Channels;

namespace Celeriac.Dashboard.Ingestion;

/// <summary>
/// The live stream's fan-out: every subscriber (an open <c>api/dashboard/stream</c>) has a bounded queue of its own; a
/// subscriber that falls behind loses its oldest messages, never slows ingestion.
/// </summary>
public sealed class DashboardLive
{
    private const int QueueCapacity = 2_000;
    private readonly Lock _gate = new();
    private readonly List<Channel<LiveMessage>> _subscribers = [];

    /// <summary>Whether anyone listens (so that nothing is serialized for no one).</summary>
    public bool HasSubscribers
    {
        get
        {
            lock (_gate)
            {
                return _subscribers.Count > 0;
            }
        }
    }

    /// <summary>Subscribes; dispose the returned handle to leave.</summary>
    public Subscription Subscribe()
    {
        var channel = Channel.CreateBounded<LiveMessage>(new BoundedChannelOptions(QueueCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        lock (_gate)
        {
            _subscribers.Add(channel);
        }

        return new Subscription(this, channel);
    }

    /// <summary>Sends a message to every subscriber.</summary>
    public void Publish(string kind, string json)
    {
        var message = new LiveMessage(kind, json);
        lock (_gate)
        {
            foreach (Channel<LiveMessage> s in _subscribers)
            {
                s.Writer.TryWrite(message);
            }
        }
    }

    private void Leave(Channel<LiveMessage> channel)
    {
        lock (_gate)
        {
            _subscribers.Remove(channel);
        }

        channel.Writer.TryComplete();
    }

    /// <summary>One subscriber's messages.</summary>
    public sealed class Subscription(DashboardLive live, Channel<LiveMessage> channel) : IDisposable
    {
        /// <summary>The messages, in order.</summary>
        public ChannelReader<LiveMessage> Reader => channel.Reader;

        /// <inheritdoc />
        public void Dispose() => live.Leave(channel);
    }
}

/// <summary>One message of the live stream: its SSE event name (<c>task</c>, <c>worker</c>) and JSON data.</summary>
/// <param name="Kind">The event name.</param>
/// <param name="Json">The data.</param>
public sealed record LiveMessage(string Kind, string Json);
