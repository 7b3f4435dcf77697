using System.Globalization;
using System.Text.Json;

namespace Celeriac.Benchmarks;

/// <summary>
/// What a drain has left: messages ready in the task queue, messages delivered but not acknowledged (null where the
/// broker does not show them cheaply enough to poll), results stored.
/// </summary>
internal readonly record struct DrainState(long Queued, long? Unacked, long Results)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Queued} queued, {(Unacked is { } u ? u.ToString(CultureInfo.InvariantCulture) : "(not polled)")} unacked, {Results} results");
}

/// <summary>What ends a drain on a broker, as the comparison table says it: with results, and without.</summary>
internal sealed record DrainEnds(string WithResults, string WithoutResults);

/// <summary>
/// The benchmark's own view of a broker server it started, outside the workers it times: the default queue
/// <c>celery</c>, where results land, and copies of what a Celery client sent, put back before each drain so that
/// every worker drains the same messages.
/// </summary>
internal interface IBrokerProbe : IAsyncDisposable
{
    /// <summary>The figures' transport name (<c>redis</c>, <c>rabbitmq</c>).</summary>
    string Transport { get; }

    /// <summary>The broker URL for Celeriac and Celery.</summary>
    string BrokerUrl { get; }

    /// <summary>The result backend URL for Celeriac and Celery.</summary>
    string BackendUrl { get; }

    /// <summary>Where results go, for the figures' notes.</summary>
    string ResultsNote { get; }

    /// <summary>Empties the task queue and the results (between phases, with no worker running).</summary>
    Task ResetAsync();

    /// <summary>The messages ready in the task queue (polled every few milliseconds: must be cheap).</summary>
    Task<long> QueuedAsync();

    /// <summary>Queue, unacked and results, polled every few milliseconds during a drain.</summary>
    Task<DrainState> StateAsync();

    /// <summary>
    /// Takes the <paramref name="count"/> messages a Celery client has just sent to the task queue and keeps them as
    /// <paramref name="name"/>; the queue is left empty. Returns what was kept, for the progress line.
    /// </summary>
    Task<string> KeepAsync(string name, int count);

    /// <summary>Puts the messages kept as <paramref name="name"/> back into the (empty) task queue.</summary>
    Task RestoreAsync(string name);

    /// <summary>
    /// Checks, with the worker still running, that the task queue holds no ready or unacked message, waiting up to
    /// <paramref name="timeout"/> for the last acks. Returns what it saw, for the progress line.
    /// </summary>
    Task<string> ConfirmEmptyAsync(TimeSpan timeout);

    /// <summary>Reads every stored result: there must be <paramref name="count"/>, all SUCCESS with an integer result.</summary>
    Task VerifyResultsAsync(int count);
}

/// <summary>Checks result documents as a probe reads them: each must be SUCCESS with an integer result, each task once.</summary>
internal sealed class ResultCheck
{
    private readonly HashSet<string> _ids = new(StringComparer.Ordinal);
    private int _read;
    private int _success;
    private string? _first;

    /// <summary>One stored result (null: gone before it could be read); <paramref name="where"/> names it in an error.</summary>
    public void Add(string where, byte[]? document)
    {
        _read++;
        string? problem = Problem(document);
        if (problem is null)
        {
            _success++;
        }
        else
        {
            _first ??= $"{where}: {problem}";
        }
    }

    /// <summary>Throws unless exactly <paramref name="count"/> results were read, every one SUCCESS for a different task.</summary>
    public void ThrowUnless(int count)
    {
        if (_read != count || _success != count || _ids.Count != count)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"{_read} results read, {_success} SUCCESS with an integer result, {_ids.Count} task ids, {count} expected; first other: {_first}"));
        }
    }

    private string? Problem(byte[]? document)
    {
        if (document is null)
        {
            return "gone";
        }

        try
        {
            using var json = JsonDocument.Parse(document);
            JsonElement root = json.RootElement;
            if (root.TryGetProperty("task_id", out JsonElement id) && id.GetString() is { } taskId && !_ids.Add(taskId))
            {
                return "a second result for task " + taskId;
            }

            string? status = root.TryGetProperty("status", out JsonElement s) ? s.GetString() : null;
            bool hasResult = root.TryGetProperty("result", out JsonElement r);
            bool integer = hasResult && r.ValueKind == JsonValueKind.Number && r.TryGetInt64(out _);
            return status == "SUCCESS" && integer ? null : $"status {status}, result {(hasResult ? r.GetRawText() : "none")}";
        }
        catch (JsonException ex)
        {
            return "not JSON: " + ex.Message;
        }
    }
}
