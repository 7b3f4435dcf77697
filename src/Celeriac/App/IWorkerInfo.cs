namespace Celeriac;

/// <summary>
/// What a worker signal's handler can read about the worker (<see cref="WorkerSignalEventArgs.Worker"/>).
/// The worker itself is the event's sender, for anything beyond this.
/// </summary>
/// <remarks>An interface, so that the app's signals need not know the worker type, which builds on the app.</remarks>
public interface IWorkerInfo
{
    /// <summary>The node name (<c>celery@host</c>), as remote control and events name the worker.</summary>
    string NodeName { get; }

    /// <summary>The queues it consumes.</summary>
    IReadOnlyList<string> Queues { get; }

    /// <summary>How many tasks it runs at once.</summary>
    int Concurrency { get; }

    /// <summary>How many tasks it has finished since it started.</summary>
    long Processed { get; }
}
