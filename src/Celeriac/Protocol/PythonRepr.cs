using System.Text;
using System.Text.Json;

namespace Celeriac.Protocol;

/// <summary>Python's <c>repr</c> of JSON values, for the <c>argsrepr</c>/<c>kwargsrepr</c> headers and logs.</summary>
public static class PythonRepr
{
    /// <summary>Celery's <c>argsrepr_maxsize</c> and <c>kwargsrepr_maxsize</c>.</summary>
    public const int MaxLength = 1024;

    /// <summary>The repr of a body's args (a tuple) or kwargs (a dict).</summary>
    internal static string OfArgs(ReadOnlySpan<byte> body, bool kwargs)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = JsonValues.MaxDepth });
        using var doc = JsonDocument.ParseValue(ref reader);
        JsonElement e = doc.RootElement[kwargs ? 1 : 0];
        return kwargs ? Of(e) : OfTuple(e);
    }

    /// <summary>The repr of a JSON array as a Python tuple.</summary>
    public static string OfTuple(JsonElement array)
    {
        var sb = new StringBuilder("(");
        int n = 0;
        foreach (JsonElement item in array.EnumerateArray())
        {
            if (n++ > 0)
            {
                sb.Append(", ");
            }

            Append(sb, item);
            if (sb.Length > MaxLength)
            {
                break;
            }
        }

        if (n == 1)
        {
            sb.Append(',');
        }

        return Truncate(sb.Append(')'));
    }

    /// <summary>The repr of any JSON value.</summary>
    public static string Of(JsonElement value) => Truncate(Append(new StringBuilder(), value));

    private static string Truncate(StringBuilder sb) => sb.Length > MaxLength ? sb.ToString(0, MaxLength - 3) + "..." : sb.ToString();

    /// <summary>The repr of a string: <c>'text'</c>, or <c>"it's"</c> when that needs fewer escapes.</summary>
    internal static string OfString(string s) => AppendString(new StringBuilder(s.Length + 2), s).ToString();

    private static StringBuilder AppendString(StringBuilder sb, string s)
    {
        char quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        sb.Append(quote);
        foreach (char c in s)
        {
            _ = c switch
            {
                '\\' => sb.Append(@"\\"),
                '\n' => sb.Append(@"\n"),
                '\r' => sb.Append(@"\r"),
                '\t' => sb.Append(@"\t"),
                _ when c == quote => sb.Append('\\').Append(c),
                _ => sb.Append(c),
            };
        }

        return sb.Append(quote);
    }

    private static StringBuilder Append(StringBuilder sb, JsonElement e)
    {
        if (sb.Length > MaxLength)
        {
            return sb;
        }

        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                return AppendString(sb, e.GetString()!);
            case JsonValueKind.True:
                return sb.Append("True");
            case JsonValueKind.False:
                return sb.Append("False");
            case JsonValueKind.Null:
                return sb.Append("None");
            case JsonValueKind.Array:
                sb.Append('[');
                int i = 0;
                foreach (JsonElement item in e.EnumerateArray())
                {
                    if (i++ > 0)
                    {
                        sb.Append(", ");
                    }

                    Append(sb, item);
                }

                return sb.Append(']');
            case JsonValueKind.Object:
                sb.Append('{');
                int j = 0;
                foreach (JsonProperty p in e.EnumerateObject())
                {
                    if (j++ > 0)
                    {
                        sb.Append(", ");
                    }

                    sb.Append('\'').Append(p.Name).Append("': ");
                    Append(sb, p.Value);
                }

                return sb.Append('}');
            default:
                return sb.Append(e.GetRawText());
        }
    }
}
