namespace Celeriac.Results;

/// <summary>
/// A result backend that receives results in the client's own reply queue (rpc://): the queue must exist before a
/// task is sent, or its result would be dropped by the broker, so the app asks for it before each send.
/// </summary>
public interface IReplyQueueResultBackend
{
    /// <summary>Declares the reply queue (once) and starts listening to it.</summary>
    ValueTask EnsureReplyQueueAsync(CancellationToken ct = default);
}
