using System.Globalization;
using System.Text;

namespace Celeriac.Dashboard.Store;

/// <summary>
/// Reads the Python literals that task events carry as reprs (<c>(2, 3)</c>, <c>{'k': 'v', 'n': None}</c>), as Python's
/// <c>ast.literal_eval</c> does for the JSON-like subset: None, True, False, numbers, strings, tuples, lists and dicts.
/// Tuples and lists become <see cref="List{T}"/>, dicts <see cref="Dictionary{TKey, TValue}"/> with string keys.
/// </summary>
public static class PyLiteral
{
    /// <summary>Parses a literal; false for anything else (a truncated repr, an object's repr).</summary>
    public static bool TryParse(string? text, out object? value)
    {
        value = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var reader = new Reader(text);
        try
        {
            value = reader.Value(0);
            reader.SkipSpace();
            return reader.AtEnd;
        }
        catch (FormatException)
        {
            value = null;
            return false;
        }
    }

    /// <summary>Python's <c>str()</c> of a parsed value.</summary>
    public static string Str(object? value) => value switch
    {
        null => "None",
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    private sealed class Reader(string text)
    {
        private int _i;

        public bool AtEnd => _i >= text.Length;

        public void SkipSpace()
        {
            while (_i < text.Length && char.IsWhiteSpace(text[_i]))
            {
                _i++;
            }
        }

        private char Peek()
        {
            SkipSpace();
            return _i < text.Length ? text[_i] : throw new FormatException("unexpected end");
        }

        public object? Value(int depth)
        {
            if (depth > 64)
            {
                throw new FormatException("too deep");
            }

            char c = Peek();
            switch (c)
            {
                case '(':
                    return Sequence(')', depth);
                case '[':
                    return Sequence(']', depth);
                case '{':
                    return Dict(depth);
                case '\'' or '"':
                    return String();
                default:
                    if (c == '-' || c == '+' || char.IsDigit(c) || c == '.')
                    {
                        return Number();
                    }

                    return Word();
            }
        }

        private List<object?> Sequence(char close, int depth)
        {
            _i++;
            var items = new List<object?>();
            while (true)
            {
                if (Peek() == close)
                {
                    _i++;
                    return items;
                }

                items.Add(Value(depth + 1));
                char next = Peek();
                _i++;
                if (next == close)
                {
                    return items;
                }

                if (next != ',')
                {
                    throw new FormatException("expected ,");
                }
            }
        }

        private Dictionary<string, object?> Dict(int depth)
        {
            _i++;
            var map = new Dictionary<string, object?>(StringComparer.Ordinal);
            while (true)
            {
                if (Peek() == '}')
                {
                    _i++;
                    return map;
                }

                object? key = Value(depth + 1);
                if (Peek() != ':')
                {
                    throw new FormatException("expected :");
                }

                _i++;
                map[Str(key)] = Value(depth + 1);
                char next = Peek();
                _i++;
                if (next == '}')
                {
                    return map;
                }

                if (next != ',')
                {
                    throw new FormatException("expected ,");
                }
            }
        }

        private string String()
        {
            char quote = text[_i++];
            var sb = new StringBuilder();
            while (_i < text.Length)
            {
                char c = text[_i++];
                if (c == quote)
                {
                    return sb.ToString();
                }

                if (c != '\\')
                {
                    sb.Append(c);
                    continue;
                }

                if (_i >= text.Length)
                {
                    break;
                }

                char e = text[_i++];
                switch (e)
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case '0': sb.Append('\0'); break;
                    case 'x' when _i + 2 <= text.Length:
                        sb.Append((char)int.Parse(text.AsSpan(_i, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        _i += 2;
                        break;
                    case 'u' when _i + 4 <= text.Length:
                        sb.Append((char)int.Parse(text.AsSpan(_i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        _i += 4;
                        break;
                    default: sb.Append(e); break;
                }
            }

            throw new FormatException("unterminated string");
        }

        private object Number()
        {
            int start = _i;
            while (_i < text.Length && (char.IsDigit(text[_i]) || text[_i] is '-' or '+' or '.' or 'e' or 'E' or '_'))
            {
                _i++;
            }

            string s = text[start.._i].Replace("_", "", StringComparison.Ordinal);
            if (long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
            {
                return l;
            }

            return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : throw new FormatException("bad number");
        }

        private object? Word()
        {
            int start = _i;
            while (_i < text.Length && char.IsLetter(text[_i]))
            {
                _i++;
            }

            return text[start.._i] switch
            {
                "None" => null,
                "True" => true,
                "False" => false,
                _ => throw new FormatException("not a literal"),
            };
        }
    }
}
