using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Celeriac.Tests.Support;

/// <summary>Structural JSON comparisons: object key order ignored unless asked, numbers by value.</summary>
internal static class JsonAssert
{
    public static JsonElement Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }

    public static JsonElement Parse(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8);
        return JsonElement.ParseValue(ref reader);
    }

    /// <summary>Asserts deep equality; integers and floats must stay integers and floats.</summary>
    public static void Equal(JsonElement expected, JsonElement actual, string path = "$")
    {
        string? difference = Difference(expected, actual, path);
        Assert.True(difference is null, difference);
    }

    public static string? Difference(JsonElement expected, JsonElement actual, string path = "$")
    {
        if (Kind(expected) != Kind(actual))
        {
            return $"{path}: expected {Kind(expected)} {Short(expected)}, got {Kind(actual)} {Short(actual)}";
        }

        switch (expected.ValueKind)
        {
            case JsonValueKind.Object:
                var expectedNames = expected.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
                var actualNames = actual.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
                if (!expectedNames.SequenceEqual(actualNames))
                {
                    return $"{path}: expected keys [{string.Join(", ", expectedNames)}], got [{string.Join(", ", actualNames)}]";
                }

                foreach (JsonProperty p in expected.EnumerateObject())
                {
                    if (Difference(p.Value, actual.GetProperty(p.Name), $"{path}.{p.Name}") is { } d)
                    {
                        return d;
                    }
                }

                return null;
            case JsonValueKind.Array:
                if (expected.GetArrayLength() != actual.GetArrayLength())
                {
                    return $"{path}: expected {expected.GetArrayLength()} items, got {actual.GetArrayLength()}";
                }

                for (int i = 0; i < expected.GetArrayLength(); i++)
                {
                    if (Difference(expected[i], actual[i], $"{path}[{i}]") is { } d)
                    {
                        return d;
                    }
                }

                return null;
            case JsonValueKind.Number:
                bool same = IsInteger(expected)
                    ? System.Numerics.BigInteger.Parse(expected.GetRawText(), CultureInfo.InvariantCulture) == System.Numerics.BigInteger.Parse(actual.GetRawText(), CultureInfo.InvariantCulture)
                    : expected.GetDouble().Equals(actual.GetDouble());
                return same ? null : $"{path}: expected {expected.GetRawText()}, got {actual.GetRawText()}";
            case JsonValueKind.String:
                return expected.GetString() == actual.GetString() ? null : $"{path}: expected \"{expected.GetString()}\", got \"{actual.GetString()}\"";
            default:
                return null;
        }
    }

    /// <summary>The Python type a JSON value decodes to: int and float are different kinds.</summary>
    public static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => IsInteger(e) ? "int" : "float",
        JsonValueKind.True or JsonValueKind.False => "bool",
        JsonValueKind.String => "str",
        JsonValueKind.Null => "None",
        JsonValueKind.Array => "list",
        JsonValueKind.Object => "dict",
        _ => e.ValueKind.ToString(),
    };

    /// <summary>Python's json reads a number without '.', 'e' or 'E' as an int.</summary>
    public static bool IsInteger(JsonElement number) => number.GetRawText().AsSpan().IndexOfAny(".eE") < 0;

    /// <summary>Property names in document order.</summary>
    public static string[] Keys(JsonElement obj) => [.. obj.EnumerateObject().Select(p => p.Name)];

    /// <summary>The key → kind map of an object, for comparing shapes.</summary>
    public static string Shape(JsonElement obj) =>
        string.Join(", ", obj.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => $"{p.Name}:{Kind(p.Value)}"));

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static string Short(JsonElement e)
    {
        string raw = e.GetRawText();
        return raw.Length > 80 ? raw[..80] + "..." : raw;
    }
}
