namespace Celeriac.Results;

/// <summary>No result backend (<c>disabled://</c>): stores nothing; reading a result is a clear error.</summary>
public sealed class DisabledResultBackend : IResultBackend
{
    private static InvalidOperationException NoBackend() =>
        new("No result backend is configured: set ResultBackend (CELERIAC_RESULT_BACKEND) to read results.");

    /// <inheritdoc />
    public ValueTask StoreAsync(TaskResultMeta meta, CancellationToken ct = default) => ValueTask.CompletedTask;

    /// <inheritdoc />
    public ValueTask<TaskResultMeta?> GetAsync(string taskId, CancellationToken ct = default) => throw NoBackend();

    /// <inheritdoc />
    public ValueTask<TaskResultMeta> WaitAsync(string taskId, CancellationToken ct = default) => throw NoBackend();

    /// <inheritdoc />
    public ValueTask ForgetAsync(string taskId, CancellationToken ct = default) => ValueTask.CompletedTask;

    /// <inheritdoc />
    public ValueTask SaveGroupAsync(string groupId, IReadOnlyList<string> taskIds, CancellationToken ct = default) => throw NoBackend();

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<string>?> RestoreGroupAsync(string groupId, CancellationToken ct = default) => throw NoBackend();

    /// <inheritdoc />
    public ValueTask<long> IncrementChordCounterAsync(string groupId, CancellationToken ct = default) => throw NoBackend();

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
