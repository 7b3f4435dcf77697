using System.Globalization;
using System.Text.Json;
using Celeriac.Protocol;

namespace Celeriac.Worker;

/// <summary>
/// A command that failed as Celery's handler would raise: the worker replies <c>{"error": "&lt;Type&gt;('message')"}</c>,
/// the repr kombu's pidbox sends.
/// </summary>
internal sealed class ControlCommandException(string pythonType, string message) : Exception(message)
{
    public string Repr => $"{pythonType}({PythonRepr.OfString(Message)})";
}

/// <summary>The keyword arguments of a pidbox request, read as Celery's handlers take them (<c>**arguments</c>).</summary>
internal readonly struct ControlArguments(string method, JsonElement arguments)
{
    public string? Text(string name) => Get(name) is { } v ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText() : null;

    public string RequiredText(string name) => Text(name) ?? throw Missing(name);

    public long? Integer(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } n when n.TryGetInt64(out long l) => l,
        { ValueKind: JsonValueKind.Number } n => (long)n.GetDouble(),
        { ValueKind: JsonValueKind.String } s when long.TryParse(s.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long l) => l,
        { } other => throw new ControlCommandException("ValueError", $"invalid literal for int() with base 10: {other.GetRawText()}"),
    };

    public double? Number(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } n => n.GetDouble(),
        { ValueKind: JsonValueKind.String } s when double.TryParse(s.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
        { } other => throw new ControlCommandException("ValueError", $"could not convert string to float: {other.GetRawText()}"),
    };

    public bool Flag(string name) => Get(name) switch
    {
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.String } s => s.GetString()?.ToUpperInvariant() is "Y" or "YES" or "T" or "TRUE" or "ON" or "1",
        { ValueKind: JsonValueKind.Number } n => n.GetDouble() != 0,
        _ => false,
    };

    /// <summary>Celery's <c>maybe_list</c>: one value or a list of them, as text.</summary>
    public IReadOnlyList<string> List(string name) => Get(name) switch
    {
        null => [],
        { ValueKind: JsonValueKind.Array } a => [.. a.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText())],
        { ValueKind: JsonValueKind.String } s => [s.GetString()!],
        { } other => [other.GetRawText()],
    };

    public JsonElement? Get(string name) =>
        arguments.ValueKind == JsonValueKind.Object && arguments.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private ControlCommandException Missing(string name) =>
        new("TypeError", $"{method}() missing 1 required positional argument: '{name}'");
}
