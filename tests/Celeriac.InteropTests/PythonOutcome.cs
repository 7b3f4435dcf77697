using System.Text.Json;

namespace Celeriac.InteropTests;

/// <summary>What a Python client saw of one task (<c>interop_client.outcome</c>): state, value and type, or error.</summary>
internal sealed record PythonOutcome(string Id, string State, JsonElement? Value, string? Type, string? ExcType, string? ExcMessage, string? DateDone)
{
    public static PythonOutcome From(JsonElement e) => new(
        e.GetProperty("id").GetString()!,
        e.GetProperty("state").GetString()!,
        e.TryGetProperty("value", out JsonElement v) ? v.Clone() : null,
        Str(e, "type"),
        Str(e, "exc_type"),
        Str(e, "exc_message"),
        Str(e, "date_done"));

    /// <summary>The outcomes printed by <c>interop_client.report</c> (a JSON list).</summary>
    public static IReadOnlyList<PythonOutcome> ParseList(string json)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        return [.. doc.RootElement.EnumerateArray().Select(From)];
    }

    /// <summary>The canonical JSON of the value (see <see cref="JsonText"/>), or <c>&lt;none&gt;</c> when the task failed.</summary>
    public string ValueJson => Value is { } v ? JsonText.Canonical(v) : "<none: " + ExcType + ": " + ExcMessage + ">";

    private static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out JsonElement p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
}
