using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Celeriac;

/// <summary>
/// A configuration section as the JSON it was most likely written as: <see cref="IConfiguration"/> keeps every value as
/// text and arrays as keys 0..n, so numbers, booleans and null are read back from their text and 0..n become arrays
/// (a string that reads as a number becomes one: write it in <c>appsettings.json</c> read by Celeriac's own reader to
/// keep it a string).
/// </summary>
internal static class ConfigurationJson
{
    public static JsonElement ToJson(IConfigurationSection section)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            Write(w, section);
        }

        using JsonDocument doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    private static void Write(Utf8JsonWriter w, IConfigurationSection section)
    {
        IConfigurationSection[] children = [.. section.GetChildren()];
        if (children.Length == 0)
        {
            WriteScalar(w, section.Value);
            return;
        }

        bool isArray = children.Select((c, i) => c.Key == i.ToString(CultureInfo.InvariantCulture)).All(x => x);
        if (isArray)
        {
            w.WriteStartArray();
            foreach (IConfigurationSection c in children.OrderBy(c => int.Parse(c.Key, CultureInfo.InvariantCulture)))
            {
                Write(w, c);
            }

            w.WriteEndArray();
            return;
        }

        w.WriteStartObject();
        foreach (IConfigurationSection c in children)
        {
            w.WritePropertyName(c.Key);
            Write(w, c);
        }

        w.WriteEndObject();
    }

    private static void WriteScalar(Utf8JsonWriter w, string? value)
    {
        if (value is null || value == "null")
        {
            w.WriteNullValue();
        }
        else if (bool.TryParse(value, out bool b))
        {
            w.WriteBooleanValue(b);
        }
        else if (long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long l))
        {
            w.WriteNumberValue(l);
        }
        else if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d))
        {
            w.WriteNumberValue(d);
        }
        else
        {
            w.WriteStringValue(value);
        }
    }
}
