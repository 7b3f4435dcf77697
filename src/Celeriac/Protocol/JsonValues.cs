using System.Globalization;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Celeriac.Protocol;

/// <summary>
/// Converts between JSON and the plain CLR values that message headers and properties carry:
/// <see cref="string"/>, <see cref="long"/>, <see cref="BigInteger"/>, <see cref="double"/>, <see cref="bool"/>,
/// <see langword="null"/>, <see cref="List{T}"/> of values and <see cref="Dictionary{TKey, TValue}"/> of values.
/// </summary>
public static class JsonValues
{
    /// <summary>
    /// The deepest nesting accepted when reading untrusted input. Deep enough for Celery's result tuples, which nest one
    /// level pair per parent (<c>[[id, [[parent, ...], null]], null]</c>): the <c>celery.chord_unlock</c> of a chord whose
    /// header holds long chains carries them.
    /// </summary>
    public const int MaxDepth = 256;

    /// <summary>Reads the value at the reader's current token.</summary>
    public static object? Read(ref Utf8JsonReader reader)
    {
        if (reader.CurrentDepth > MaxDepth)
        {
            throw new JsonException($"JSON is nested deeper than {MaxDepth} levels.");
        }

        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                return ReadString(ref reader);
            case JsonTokenType.Number:
                if (reader.TryGetInt64(out long l))
                {
                    return l;
                }

                string raw = reader.HasValueSequence ? System.Text.Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(reader.ValueSequence)) : System.Text.Encoding.UTF8.GetString(reader.ValueSpan);
                if (raw.AsSpan().IndexOfAny(".eE") < 0 && BigInteger.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out BigInteger big))
                {
                    return big;
                }

                return reader.GetDouble();
            case JsonTokenType.True:
                return true;
            case JsonTokenType.False:
                return false;
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.StartArray:
                var list = new List<object?>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    list.Add(Read(ref reader));
                }

                return list;
            case JsonTokenType.StartObject:
                return ReadObject(ref reader);
            default:
                throw new JsonException($"Unexpected JSON token {reader.TokenType}.");
        }
    }

    /// <summary>Reads an object at the reader's current <see cref="JsonTokenType.StartObject"/> token.</summary>
    public static Dictionary<string, object?> ReadObject(ref Utf8JsonReader reader) => ReadObject(ref reader, 0);

    /// <summary>Reads an object at the reader's current token into a dictionary with room for <paramref name="capacity"/> names.</summary>
    internal static Dictionary<string, object?> ReadObject(ref Utf8JsonReader reader, int capacity)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException($"Expected a JSON object, got {reader.TokenType}.");
        }

        var dict = new Dictionary<string, object?>(capacity, StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            string key = ReadString(ref reader);
            reader.Read();
            dict[key] = Read(ref reader);
        }

        return dict;
    }

    /// <summary>
    /// The string (or property name) at the reader's current token: one of <see cref="CommonStrings"/> when it is one,
    /// instead of a new string each time.
    /// </summary>
    internal static string ReadString(ref Utf8JsonReader reader) =>
        !reader.ValueIsEscaped && !reader.HasValueSequence && CommonStrings.Find(reader.ValueSpan) is { } common ? common : reader.GetString()!;

    /// <summary>Parses a whole JSON document into a plain value.</summary>
    public static object? Parse(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth + 2 });
        if (!reader.Read())
        {
            throw new JsonException("Empty JSON.");
        }

        return Read(ref reader);
    }

    /// <summary>
    /// Writes a double as Python's json does: a whole value keeps its <c>.0</c> (<c>2.0</c>, not <c>2</c>),
    /// so that a Python reader gets a float back, not an int.
    /// </summary>
    internal static void WriteDouble(Utf8JsonWriter writer, double d)
    {
        if (!double.IsFinite(d))
        {
            writer.WriteNumberValue(d); // throws: JSON has no NaN or Infinity
            return;
        }

        string text = d.ToString("R", CultureInfo.InvariantCulture);
        writer.WriteRawValue(text.AsSpan().IndexOfAny(".eE") < 0 ? text + ".0" : text, skipInputValidation: true);
    }

    /// <summary>Writes a plain value; other types go through <see cref="JsonSerializer"/>.</summary>
    public static void Write(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                break;
            case string s:
                writer.WriteStringValue(s);
                break;
            case bool b:
                writer.WriteBooleanValue(b);
                break;
            case int i:
                writer.WriteNumberValue(i);
                break;
            case long l:
                writer.WriteNumberValue(l);
                break;
            case double d:
                WriteDouble(writer, d);
                break;
            case BigInteger big:
                writer.WriteRawValue(big.ToString(CultureInfo.InvariantCulture), skipInputValidation: true);
                break;
            case JsonElement e:
                e.WriteTo(writer);
                break;

            // JSON the value already is (the canvas built-ins return these): written as it is, without the serializer,
            // which a NativeAOT app has no metadata for.
            case JsonNode node:
                node.WriteTo(writer);
                break;
            case IEnumerable<JsonElement> elements:
                writer.WriteStartArray();
                foreach (JsonElement element in elements)
                {
                    element.WriteTo(writer);
                }

                writer.WriteEndArray();
                break;
            case IDictionary<string, object?> dict:
                writer.WriteStartObject();
                foreach (KeyValuePair<string, object?> kv in dict)
                {
                    writer.WritePropertyName(kv.Key);
                    Write(writer, kv.Value);
                }

                writer.WriteEndObject();
                break;
            case IList<object?> list:
                writer.WriteStartArray();
                foreach (object? item in list)
                {
                    Write(writer, item);
                }

                writer.WriteEndArray();
                break;
            default:
                JsonSerializer.Serialize(writer, value, CeleryJson.Options.GetTypeInfo(value.GetType()));
                break;
        }
    }
}
