using System.Text.Json;
using Celeriac.Protocol;

namespace Celeriac.Testing;

/// <summary>
/// One thing the harness saw happen to a task: sent, received, succeeded, failed, retried or revoked. Which
/// properties are set depends on the list it is in (see <see cref="CeleriacTestHarness"/>).
/// </summary>
public sealed class HarnessTask
{
    /// <summary>Creates a record (constructible in tests of your own helpers).</summary>
    public HarnessTask(string taskId, string taskName, JsonElement args, JsonElement kwargs)
    {
        TaskId = taskId;
        TaskName = taskName;
        Args = args;
        Kwargs = kwargs;
    }

    /// <summary>The task id.</summary>
    public string TaskId { get; }

    /// <summary>The task name.</summary>
    public string TaskName { get; }

    /// <summary>The positional arguments as sent (a JSON list).</summary>
    public JsonElement Args { get; }

    /// <summary>The keyword arguments as sent (a JSON object).</summary>
    public JsonElement Kwargs { get; }

    /// <summary>How many times it had been retried.</summary>
    public int Retries { get; init; }

    /// <summary>When it is due (sent), or <see langword="null"/> for now.</summary>
    public DateTimeOffset? Eta { get; init; }

    /// <summary>The queue it was sent to or taken from.</summary>
    public string? Queue { get; init; }

    /// <summary>The value it returned (succeeded), as the task returned it.</summary>
    public object? Value { get; init; }

    /// <summary>What it threw (failed), or the retry's reason (retried).</summary>
    public Exception? Exception { get; init; }

    /// <summary>Why (retried: the retry's message; revoked: revoked, expired, terminated).</summary>
    public string? Reason { get; init; }

    /// <summary>Fake time when the harness saw it.</summary>
    public DateTimeOffset At { get; init; }

    /// <summary>The positional argument at <paramref name="index"/> as <typeparamref name="T"/>.</summary>
    public T? Arg<T>(int index) =>
        index >= 0 && index < Args.GetArrayLength()
            ? Args[index].Deserialize<T>(CeleryJson.Options)
            : throw new ArgumentOutOfRangeException(nameof(index), $"{TaskName} was called with {Args.GetArrayLength()} positional arguments");

    /// <summary>The keyword argument <paramref name="name"/> as <typeparamref name="T"/>.</summary>
    public T? Kwarg<T>(string name) =>
        Kwargs.ValueKind == JsonValueKind.Object && Kwargs.TryGetProperty(name, out JsonElement value)
            ? value.Deserialize<T>(CeleryJson.Options)
            : throw new KeyNotFoundException($"{TaskName} was called without keyword argument '{name}'");

    /// <summary>The returned value as <typeparamref name="T"/> (as a client would read it, through JSON when the types differ).</summary>
    public T? Result<T>() => Value is T typed ? typed : JsonSerializer.Deserialize<T>(TaskResultMeta.SerializeValue(Value), CeleryJson.Options);

    /// <inheritdoc />
    public override string ToString() => $"{TaskName}[{TaskId}] args={Args.GetRawText()} kwargs={Kwargs.GetRawText()}";
}
