using System.Text.Encodings.Web;
using System.Text.Json;

namespace Celeriac.InteropTests;

/// <summary>JSON compared as values: whitespace and string escapes normalized, numbers kept as written (2.0 is not 2).</summary>
internal static class JsonText
{
    private static readonly JsonWriterOptions s_options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The canonical text of a JSON value.</summary>
    public static string Canonical(string json)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        return Canonical(doc.RootElement);
    }

    /// <summary>The canonical text of a JSON value.</summary>
    public static string Canonical(JsonElement element)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, s_options))
        {
            element.WriteTo(writer);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The canonical text of a raw UTF-8 JSON value.</summary>
    public static string Canonical(ReadOnlyMemory<byte> utf8)
    {
        using JsonDocument doc = JsonDocument.Parse(utf8);
        return Canonical(doc.RootElement);
    }
}
