namespace Celeriac.Results;

/// <summary>
/// Stores task states and results, and lets clients wait for them (pushed where the store can push).
/// Implementations write Celery's documents under Celery's key names.
/// </summary>
public interface IResultBackend : IAsyncDisposable
{
    /// <summary>Stores a state; a ready state expires after the backend's result expiry.</summary>
    ValueTask StoreAsync(TaskResultMeta meta, CancellationToken ct = default);

    /// <summary>Reads the stored document, or <see langword="null"/> when there is none (PENDING).</summary>
    ValueTask<TaskResultMeta?> GetAsync(string taskId, CancellationToken ct = default);

    /// <summary>
    /// Waits until the task's state is ready (SUCCESS, FAILURE, REVOKED) and returns it. Cancel
    /// <paramref name="ct"/> to stop waiting.
    /// </summary>
    ValueTask<TaskResultMeta> WaitAsync(string taskId, CancellationToken ct = default);

    /// <summary>Deletes the stored result.</summary>
    ValueTask ForgetAsync(string taskId, CancellationToken ct = default);

    /// <summary>Saves a group's member ids (Celery's <c>GroupResult.save()</c>).</summary>
    ValueTask SaveGroupAsync(string groupId, IReadOnlyList<string> taskIds, CancellationToken ct = default);

    /// <summary>Reads a saved group's member ids, or <see langword="null"/>.</summary>
    ValueTask<IReadOnlyList<string>?> RestoreGroupAsync(string groupId, CancellationToken ct = default);

    /// <summary>Adds one to a chord's counter of finished members and returns the new count.</summary>
    ValueTask<long> IncrementChordCounterAsync(string groupId, CancellationToken ct = default);
}
