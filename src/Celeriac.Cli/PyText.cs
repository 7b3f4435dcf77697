using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using Celeriac.Protocol;

namespace Celeriac.Cli;

/// <summary>
/// Plain JSON values (string, long, BigInteger, double, bool, null, lists, dictionaries) printed as Celery's CLI prints
/// them from Python: <c>str()</c>, <c>repr()</c> and <c>json.dumps</c>, so that output matches <c>celery</c>'s line for line.
/// </summary>
internal static class PyText
{
    /// <summary>A JSON element as plain values (dictionaries keep the order of their keys).</summary>
    public static object? Plain(JsonElement element) => JsonValues.Parse(Encoding.UTF8.GetBytes(element.GetRawText()));

    /// <summary>Python's <c>str(value)</c>: a string as itself, anything else as its <c>repr</c>.</summary>
    public static string Str(object? value) => value as string ?? Repr(value);

    /// <summary>Python's <c>repr(value)</c>.</summary>
    public static string Repr(object? value)
    {
        var text = new StringBuilder();
        AppendRepr(text, value);
        return text.ToString();
    }

    /// <summary>
    /// Python's <c>json.dumps(value)</c> (<paramref name="indent"/> null: one line with <c>", "</c> and <c>": "</c>), with
    /// keys sorted when <paramref name="sortKeys"/>, non-ASCII escaped as Python's <c>ensure_ascii</c>.
    /// </summary>
    public static string Dumps(object? value, int? indent = null, bool sortKeys = false)
    {
        var text = new StringBuilder();
        AppendJson(text, value, indent, sortKeys, 0);
        return text.ToString();
    }

    /// <summary>Celery's <c>text.indent</c>: every line prefixed with <paramref name="spaces"/> spaces.</summary>
    public static string Indent(string text, int spaces)
    {
        string pad = new(' ', spaces);
        return string.Join('\n', text.Split('\n').Select(line => pad + line));
    }

    /// <summary>Python's <c>repr(float)</c>: the shortest round-trip digits, <c>1.0</c> for whole numbers, <c>1e-05</c> style exponents.</summary>
    public static string Float(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }

        string r = d.ToString("R", CultureInfo.InvariantCulture);
        int e = r.IndexOf('E', StringComparison.Ordinal);
        if (e >= 0)
        {
            string mantissa = r[..e];
            string exponent = r[(e + 1)..];
            char sign = exponent[0] == '-' ? '-' : '+';
            string digits = exponent.TrimStart('+', '-').PadLeft(2, '0');
            return mantissa + "e" + sign + digits;
        }

        return r.Contains('.', StringComparison.Ordinal) ? r : r + ".0";
    }

    private static void AppendRepr(StringBuilder text, object? value)
    {
        switch (value)
        {
            case null:
                text.Append("None");
                break;
            case bool b:
                text.Append(b ? "True" : "False");
                break;
            case string s:
                AppendPyString(text, s);
                break;
            case long l:
                text.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case BigInteger big:
                text.Append(big.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                text.Append(Float(d));
                break;
            case IReadOnlyDictionary<string, object?> dict:
                text.Append('{');
                bool firstKey = true;
                foreach (KeyValuePair<string, object?> kv in dict)
                {
                    text.Append(firstKey ? "" : ", ");
                    firstKey = false;
                    AppendPyString(text, kv.Key);
                    text.Append(": ");
                    AppendRepr(text, kv.Value);
                }

                text.Append('}');
                break;
            case IEnumerable<object?> list:
                text.Append('[');
                bool firstItem = true;
                foreach (object? item in list)
                {
                    text.Append(firstItem ? "" : ", ");
                    firstItem = false;
                    AppendRepr(text, item);
                }

                text.Append(']');
                break;
            default:
                text.Append(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }

    /// <summary>Python's string repr: single quotes unless the text has one and no double quote.</summary>
    private static void AppendPyString(StringBuilder text, string s)
    {
        char quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        text.Append(quote);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\':
                    text.Append(@"\\");
                    break;
                case '\n':
                    text.Append(@"\n");
                    break;
                case '\r':
                    text.Append(@"\r");
                    break;
                case '\t':
                    text.Append(@"\t");
                    break;
                default:
                    if (c == quote)
                    {
                        text.Append('\\').Append(c);
                    }
                    else if (c < 0x20 || c == 0x7f)
                    {
                        text.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
                    }
                    else
                    {
                        text.Append(c);
                    }

                    break;
            }
        }

        text.Append(quote);
    }

    private static void AppendJson(StringBuilder text, object? value, int? indent, bool sortKeys, int depth)
    {
        switch (value)
        {
            case null:
                text.Append("null");
                break;
            case bool b:
                text.Append(b ? "true" : "false");
                break;
            case string s:
                AppendJsonString(text, s);
                break;
            case double d:
                text.Append(double.IsFinite(d) ? Float(d) : double.IsNaN(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
                break;
            case IReadOnlyDictionary<string, object?> dict:
                IEnumerable<KeyValuePair<string, object?>> pairs = sortKeys ? dict.OrderBy(kv => kv.Key, StringComparer.Ordinal) : dict;
                AppendContainer(text, '{', '}', pairs.Select(kv => (Action)(() =>
                {
                    AppendJsonString(text, kv.Key);
                    text.Append(": ");
                    AppendJson(text, kv.Value, indent, sortKeys, depth + 1);
                })).ToList(), indent, depth);
                break;
            case IEnumerable<object?> list:
                AppendContainer(text, '[', ']', list.Select(item => (Action)(() => AppendJson(text, item, indent, sortKeys, depth + 1))).ToList(), indent, depth);
                break;
            default:
                AppendRepr(text, value);
                break;
        }
    }

    private static void AppendContainer(StringBuilder text, char open, char close, List<Action> items, int? indent, int depth)
    {
        if (items.Count == 0)
        {
            text.Append(open).Append(close);
            return;
        }

        text.Append(open);
        for (int i = 0; i < items.Count; i++)
        {
            if (indent is { } n)
            {
                text.Append(i == 0 ? "" : ",").Append('\n').Append(' ', n * (depth + 1));
            }
            else if (i > 0)
            {
                text.Append(", ");
            }

            items[i]();
        }

        if (indent is { } m)
        {
            text.Append('\n').Append(' ', m * depth);
        }

        text.Append(close);
    }

    private static void AppendJsonString(StringBuilder text, string s)
    {
        text.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"':
                    text.Append("\\\"");
                    break;
                case '\\':
                    text.Append(@"\\");
                    break;
                case '\n':
                    text.Append(@"\n");
                    break;
                case '\r':
                    text.Append(@"\r");
                    break;
                case '\t':
                    text.Append(@"\t");
                    break;
                case '\b':
                    text.Append(@"\b");
                    break;
                case '\f':
                    text.Append(@"\f");
                    break;
                default:
                    if (c < 0x20 || c > 0x7f)
                    {
                        text.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                    }
                    else
                    {
                        text.Append(c);
                    }

                    break;
            }
        }

        text.Append('"');
    }
}
