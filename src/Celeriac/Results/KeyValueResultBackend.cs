using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Celeriac.Results;

/// <summary>
/// A result backend over a key-value store, as Celery's <c>BaseKeyValueStoreBackend</c>: documents live
/// under <c>celery-task-meta-&lt;id&gt;</c>, groups under <c>celery-taskset-meta-&lt;id&gt;</c>, chord
/// counters under <c>chord-unlock-&lt;id&gt;</c>. A store implements five primitives; waiting is done here,
/// woken by the store's change signal where it has one and by polling with back-off where it has not.
/// </summary>
public abstract class KeyValueResultBackend : IResultBackend
{
    /// <summary>Celery's key prefix for task results.</summary>
    public const string TaskKeyPrefix = "celery-task-meta-";

    /// <summary>Celery's key prefix for group results.</summary>
    public const string GroupKeyPrefix = "celery-taskset-meta-";

    /// <summary>Celery's key prefix for chord counters.</summary>
    public const string ChordKeyPrefix = "chord-unlock-";

    /// <summary>Creates the backend.</summary>
    protected KeyValueResultBackend(ResultBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
    }

    /// <summary>The backend's options.</summary>
    protected ResultBackendOptions Options { get; }

    /// <summary>Reads a value, or <see langword="null"/>.</summary>
    protected abstract ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct);

    /// <summary>Writes a value that expires after <paramref name="expiry"/> (never when <see langword="null"/>).</summary>
    protected abstract ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct);

    /// <summary>Deletes a value.</summary>
    protected abstract ValueTask DeleteValueAsync(string key, CancellationToken ct);

    /// <summary>Atomically adds one to an integer value (missing = 0) and returns it.</summary>
    protected abstract ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct);

    /// <summary>
    /// The waiters of this store's keys, for a store that can tell when a key was written: it returns a table
    /// (the same instance every time) and calls <see cref="Wake"/> after each write, so that a waiter wakes at
    /// once instead of at its next poll. <value><see langword="null"/>: the store cannot tell, and waiting only
    /// polls, every <see cref="ResultBackendOptions.PollInterval"/> at most.</value>
    /// </summary>
    protected virtual KeyWaiterTable? Waiters => null;

    /// <summary>
    /// Returns a task that completes when <paramref name="key"/> may have changed, or <see langword="null"/>
    /// when the store cannot tell (then waiting polls). Taken before each read of the key, so that a write
    /// between the read and the wait is not missed. The default listens to <see cref="Waiters"/>.
    /// </summary>
    protected virtual Task? WhenChangedAsync(string key, CancellationToken ct) => Waiters?.Changed(key);

    /// <summary>
    /// Starts listening for writes of <paramref name="key"/> when its first waiter arrives (a store that is told of
    /// changes per key, as Redis by SUBSCRIBE); the wait reads the key only after this completes, so a write that
    /// lands before the subscription is still seen. Called only when <see cref="Waiters"/> is not null; one call per
    /// key however many wait on it. The default does nothing.
    /// </summary>
    protected virtual ValueTask WatchAsync(string key, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>
    /// Stops listening for writes of <paramref name="key"/> when its last waiter leaves (also after a failed
    /// <see cref="WatchAsync"/>). Must not throw. The default does nothing.
    /// </summary>
    protected virtual void Unwatch(string key)
    {
    }

    /// <summary>
    /// Wakes the waiters of <paramref name="key"/>: call it after a write of the key is durable (committed), from
    /// any thread; it does nothing when nobody waits or <see cref="Waiters"/> is null.
    /// </summary>
    protected void Wake(string key) => Waiters?.Wake(key);

    /// <inheritdoc />
    public ValueTask StoreAsync(TaskResultMeta meta, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(meta);
        return SetValueAsync(TaskKeyPrefix + meta.TaskId, meta.Encode(), Options.ResultExpires, ct);
    }

    /// <inheritdoc />
    public async ValueTask<TaskResultMeta?> GetAsync(string taskId, CancellationToken ct = default)
    {
        byte[]? value = await GetValueAsync(TaskKeyPrefix + taskId, ct).ConfigureAwait(false);
        return IsAbsent(value) ? null : TaskResultMeta.Parse(value);
    }

    /// <inheritdoc />
    public async ValueTask<TaskResultMeta> WaitAsync(string taskId, CancellationToken ct = default)
    {
        string key = TaskKeyPrefix + taskId;
        TimeSpan delay = Options.PollInterval / 16;
        KeyWaiterTable? waiters = Waiters;
        if (waiters?.Enter(key) == true)
        {
            try
            {
                await WatchAsync(key, ct).ConfigureAwait(false);
            }
            catch
            {
                LeaveWaiters(waiters, key);
                throw;
            }
        }

        try
        {
            while (true)
            {
                // Take the change signal before reading, so that a write between the read and the wait is not missed.
                Task? changed = WhenChangedAsync(key, ct);
                byte[]? value = await GetValueAsync(key, ct).ConfigureAwait(false);
                if (!IsAbsent(value))
                {
                    TaskResultMeta meta = TaskResultMeta.Parse(value);
                    if (TaskStates.IsReady(meta.Status))
                    {
                        return meta;
                    }
                }

                Task poll = Task.Delay(delay, Options.TimeProvider, ct);
                await (changed is null ? poll : Task.WhenAny(changed, poll)).ConfigureAwait(false);
                ct.ThrowIfCancellationRequested();
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Options.PollInterval.Ticks));
            }
        }
        finally
        {
            if (waiters is not null)
            {
                LeaveWaiters(waiters, key);
            }
        }
    }

    /// <summary>
    /// No value, or an empty one, reads as PENDING, as in Celery (<c>if not meta</c>): a store that is not atomic (the S3
    /// emulator, a file being written) can show an object for a moment before its bytes.
    /// </summary>
    private static bool IsAbsent([System.Diagnostics.CodeAnalysis.NotNullWhen(false)] byte[]? value) => value is null || value.Length == 0;

    private void LeaveWaiters(KeyWaiterTable waiters, string key)
    {
        if (waiters.Exit(key))
        {
            Unwatch(key);
        }
    }

    /// <inheritdoc />
    public ValueTask ForgetAsync(string taskId, CancellationToken ct = default) => DeleteValueAsync(TaskKeyPrefix + taskId, ct);

    /// <inheritdoc />
    public ValueTask SaveGroupAsync(string groupId, IReadOnlyList<string> taskIds, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        return SaveGroupDocumentAsync(groupId, taskIds, static (w, ids) =>
        {
            w.WriteStartArray();
            foreach (string id in ids)
            {
                TaskResultMeta.WriteResultTuple(w, id);
            }

            w.WriteEndArray();
        }, ct);
    }

    /// <summary>Saves a group whose members are given as Celery's result tuples (nested groups kept).</summary>
    protected ValueTask SaveGroupTuplesAsync(string groupId, ReadOnlyMemory<byte> members, CancellationToken ct) =>
        SaveGroupDocumentAsync(groupId, members, static (w, m) => w.WriteRawValue(m.Span), ct);

    /// <summary>
    /// Writes a group as Celery's <c>GroupResult.save()</c> does: <c>{"result": [[group_id, parent], members]}</c> with
    /// <paramref name="writeMembers"/> writing the list of member tuples (<c>[[id, parent], children]</c>).
    /// </summary>
    private ValueTask SaveGroupDocumentAsync<TMembers>(string groupId, TMembers members, Action<Utf8JsonWriter, TMembers> writeMembers, CancellationToken ct)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("result");
            w.WriteStartArray();
            w.WriteStringValue(groupId);
            w.WriteNullValue();
            w.WriteEndArray();
            writeMembers(w, members);
            w.WriteEndArray();
            w.WriteEndObject();
        }

        return SetValueAsync(GroupKeyPrefix + groupId, buffer.WrittenSpan.ToArray(), Options.ResultExpires, ct);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<string>?> RestoreGroupAsync(string groupId, CancellationToken ct = default)
    {
        byte[]? value = await GetValueAsync(GroupKeyPrefix + groupId, ct).ConfigureAwait(false);
        if (value is null)
        {
            return null;
        }

        // [[id, parent], children] each
        return MemberTuples(value) is { } tuples
            ? [.. tuples.EnumerateArray().Select(member => member[0][0].GetString() ?? throw new JsonException("group member without an id: " + Encoding.UTF8.GetString(value)))]
            : [];
    }

    /// <inheritdoc />
    public ValueTask<long> IncrementChordCounterAsync(string groupId, CancellationToken ct = default) =>
        IncrementValueAsync(ChordKeyPrefix + groupId, Options.ResultExpires, ct);

    /// <inheritdoc />
    public ValueTask ForgetGroupAsync(string groupId, CancellationToken ct = default) => DeleteValueAsync(GroupKeyPrefix + groupId, ct);

    /// <inheritdoc />
    public virtual bool SupportsChords => true;

    /// <inheritdoc />
    public virtual bool JoinsChordsByUnlock => false;

    /// <inheritdoc />
    public virtual ValueTask ExtendChordAsync(string groupId, int count, CancellationToken ct = default) =>
        throw new NotSupportedException("Backend does not support add_to_chord");

    /// <summary>Saves the header as a group, as Celery's key-value backends do before a chord is sent.</summary>
    public virtual ValueTask BeginChordAsync(string groupId, IReadOnlyList<string> headerIds, int size, ReadOnlyMemory<byte> nestedHeader = default, CancellationToken ct = default) =>
        nestedHeader.IsEmpty ? SaveGroupAsync(groupId, headerIds, ct) : SaveGroupTuplesAsync(groupId, nestedHeader, ct);

    /// <summary>The member tuples of a saved group's document (<c>result[1]</c>), or <see langword="null"/>.</summary>
    protected static JsonElement? MemberTuples(byte[] savedGroup)
    {
        // Nested groups nest their tuples three levels each; Celery's json has no depth limit.
        using JsonDocument doc = JsonDocument.Parse(savedGroup, new JsonDocumentOptions { MaxDepth = 512 });
        return doc.RootElement.TryGetProperty("result", out JsonElement result) && result.ValueKind == JsonValueKind.Array && result.GetArrayLength() == 2 && result[1].ValueKind == JsonValueKind.Array
            ? result[1].Clone()
            : null;
    }

    /// <summary>The task ids at the leaves of result tuples, in order (a nested group's members in its place).</summary>
    public static void LeafIds(JsonElement tuples, List<string> into)
    {
        foreach (JsonElement t in tuples.EnumerateArray())
        {
            if (into.Count > 1_000_000 || t.ValueKind != JsonValueKind.Array || t.GetArrayLength() < 2)
            {
                continue;
            }

            if (t[1].ValueKind == JsonValueKind.Array)
            {
                LeafIds(t[1], into);
            }
            else if (t[0].ValueKind == JsonValueKind.Array && t[0][0].GetString() is { } id)
            {
                into.Add(id);
            }
        }
    }

    /// <summary>Whether result tuples hold a nested group.</summary>
    public static bool IsNested(JsonElement tuples) =>
        tuples.EnumerateArray().Any(t => t.ValueKind == JsonValueKind.Array && t.GetArrayLength() > 1 && t[1].ValueKind == JsonValueKind.Array);

    /// <summary>
    /// Celery's key-value chord join: an atomic increment of <c>chord-unlock-&lt;group&gt;</c>; the member that brings it
    /// to the chord's size (the body's <c>chord_size</c>, else the saved group's length) reads every member's result.
    /// </summary>
    public virtual async ValueTask<ChordJoin?> AddChordPartAsync(ChordPartReturn part, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(part);
        byte[] saved = await GetValueAsync(GroupKeyPrefix + part.GroupId, ct).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"GroupResult {part.GroupId} no longer exists");
        JsonElement tuples = MemberTuples(saved) ?? throw new InvalidOperationException($"GroupResult {part.GroupId} is not a group: " + Encoding.UTF8.GetString(saved));
        var members = new List<string>();
        LeafIds(tuples, members);
        long count = await IncrementChordCounterAsync(part.GroupId, ct).ConfigureAwait(false);
        if (count != (part.ChordSize ?? members.Count))
        {
            return null;
        }

        var parts = new List<ChordPart>(members.Count);
        foreach (string id in members)
        {
            TaskResultMeta? meta = await GetAsync(id, ct).ConfigureAwait(false);
            parts.Add(meta is null
                ? new ChordPart(id, TaskStates.Pending, default)
                : new ChordPart(id, meta.Status, meta.ResultElement));
        }

        await DeleteValueAsync(GroupKeyPrefix + part.GroupId, ct).ConfigureAwait(false);
        await DeleteValueAsync(ChordKeyPrefix + part.GroupId, ct).ConfigureAwait(false);
        return new ChordJoin(parts, IsNested(tuples) ? Encoding.UTF8.GetBytes(tuples.GetRawText()) : null);
    }

    /// <inheritdoc />
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}
