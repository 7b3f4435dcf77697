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

    /// <summary>Deletes a saved group (Celery's <c>GroupResult.delete()</c>).</summary>
    ValueTask ForgetGroupAsync(string groupId, CancellationToken ct = default) =>
        throw new NotSupportedException($"{GetType().Name} keeps no groups.");

    /// <summary>Reads a saved group's member ids, or <see langword="null"/>.</summary>
    ValueTask<IReadOnlyList<string>?> RestoreGroupAsync(string groupId, CancellationToken ct = default);

    /// <summary>Adds one to a chord's counter of finished members and returns the new count.</summary>
    ValueTask<long> IncrementChordCounterAsync(string groupId, CancellationToken ct = default);

    /// <summary>
    /// Whether this store can join chords. A client refuses to send a chord when it cannot (as Celery's
    /// <c>ensure_chords_allowed</c>), rather than leave a body that never runs. <value>false</value>
    /// </summary>
    bool SupportsChords => false;

    /// <summary>
    /// Whether a chord on this store is joined as Celery joins one on a store without <c>incr</c> (its
    /// <c>fallback_chord_unlock</c>): the client sends <c>celery.chord_unlock</c> with the header, which polls the header's
    /// results and then sends the body; a member's end reports nothing (<see cref="AddChordPartAsync"/> returns
    /// <see langword="null"/>). A client sends chords on such a store although <see cref="SupportsChords"/> is false.
    /// <value>false</value>
    /// </summary>
    bool JoinsChordsByUnlock => false;

    /// <summary>
    /// Prepares a chord before its header is sent, as Celery's client does on this store: Redis keeps the size
    /// (<c>celery-taskset-meta-&lt;group&gt;.s</c>), key-value stores save the header as a group.
    /// <paramref name="nestedHeader"/> is the header's result tuples (Celery's <c>GroupResult.as_tuple()[1]</c>) when a
    /// member is itself a group (a chain ending in a group): the store saves it, so that the body gets the results
    /// nested as the header is, as Celery's does; empty for a flat header.
    /// </summary>
    ValueTask BeginChordAsync(string groupId, IReadOnlyList<string> headerIds, int size, ReadOnlyMemory<byte> nestedHeader = default, CancellationToken ct = default) =>
        throw new NotSupportedException($"{GetType().Name} does not support chords: use a Redis, SQLite or key-value result backend.");

    /// <summary>
    /// Records that one member of a chord's header has finished (Celery's <c>on_chord_part_return</c>), atomically:
    /// returns every member's outcome, in header order, to exactly one caller, the one whose part completes the chord
    /// (it then sends the body), and <see langword="null"/> to every other.
    /// </summary>
    ValueTask<ChordJoin?> AddChordPartAsync(ChordPartReturn part, CancellationToken ct = default) =>
        throw new NotSupportedException($"{GetType().Name} does not support chords.");

    /// <summary>Adds members to a running chord (Celery's <c>add_to_chord</c>, which only Redis supports).</summary>
    ValueTask ExtendChordAsync(string groupId, int count, CancellationToken ct = default) =>
        throw new NotSupportedException("Backend does not support add_to_chord");
}

/// <summary>A header member's end, as the worker reports it to the chord join.</summary>
/// <param name="GroupId">The chord's group id (the member's <c>group</c> header).</param>
/// <param name="GroupIndex">Its place in the header (<c>group_index</c>), or <see langword="null"/>.</param>
/// <param name="TaskId">Its task id.</param>
/// <param name="State">Its final state (SUCCESS, FAILURE, REVOKED).</param>
/// <param name="Result">Its result, or exception document, as JSON.</param>
/// <param name="ChordSize">The size the body's signature names (<c>chord_size</c>), if any.</param>
public sealed record ChordPartReturn(string GroupId, long? GroupIndex, string TaskId, string State, ReadOnlyMemory<byte> Result, int? ChordSize);

/// <summary>A chord's completed join: every finished part in header order, and the header's nested shape if it has one.</summary>
/// <param name="Parts">The parts, in header order (by group index).</param>
/// <param name="NestedHeader">The header's saved result tuples when a member is a group, else <see langword="null"/>.</param>
public sealed record ChordJoin(IReadOnlyList<ChordPart> Parts, byte[]? NestedHeader);

/// <summary>A finished member of a chord's header: its id, state and result (or exception document).</summary>
/// <param name="TaskId">The member's task id.</param>
/// <param name="State">Its state (SUCCESS, FAILURE, REVOKED).</param>
/// <param name="Result">Its result, or its exception document.</param>
public sealed record ChordPart(string TaskId, string State, System.Text.Json.JsonElement Result);
