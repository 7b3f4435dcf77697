using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using builtins;
using Celeriac.Protocol;

namespace Celeriac.SuiteWorker;

/// <summary>
/// Python's meaning of the operations the suite's tasks use, on the plain values a task parameter of type
/// <see cref="object"/> receives (<see cref="JsonValues"/>: <see langword="null"/>, <see cref="bool"/>, <see cref="long"/>,
/// <see cref="BigInteger"/>, <see cref="double"/>, <see cref="string"/>, lists and dicts of them): <c>x + y</c> adds numbers
/// (ints never overflow), concatenates strings and lists, and raises <c>TypeError</c> otherwise, as Python does.
/// </summary>
internal static class Py
{
    /// <summary>Python's <c>a + b</c>.</summary>
    public static object? Add(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double)
            {
                return ToDouble(a) + ToDouble(b);
            }

            BigInteger sum = ToBig(a) + ToBig(b);
            return sum >= long.MinValue && sum <= long.MaxValue ? (long)sum : sum;
        }

        return (a, b) switch
        {
            (string x, string y) => x + y,
            (string, _) => throw new TypeError($"can only concatenate str (not \"{TypeName(b)}\") to str"),
            (IList<object?> x, IList<object?> y) => new List<object?>([.. x, .. y]),
            (IList<object?>, _) => throw new TypeError($"can only concatenate list (not \"{TypeName(b)}\") to list"),
            _ => throw new TypeError($"unsupported operand type(s) for +: '{TypeName(a)}' and '{TypeName(b)}'"),
        };
    }

    /// <summary>Python's <c>sum(iterable)</c> (start 0).</summary>
    public static object? Sum(object? iterable)
    {
        if (iterable is not IEnumerable<object?> items)
        {
            throw new TypeError($"'{TypeName(iterable)}' object is not iterable");
        }

        object? total = 0L;
        foreach (object? item in items)
        {
            if (item is string)
            {
                throw new TypeError("unsupported operand type(s) for +: 'int' and 'str'");
            }

            total = Add(total, item);
        }

        return total;
    }

    /// <summary>Python's truth value (<c>if z:</c>).</summary>
    public static bool Truthy(object? value) => value switch
    {
        null => false,
        bool b => b,
        long l => l != 0,
        BigInteger big => !big.IsZero,
        double d => d != 0,
        string s => s.Length > 0,
        System.Collections.ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>Python's name of the value's type, as its error messages show it.</summary>
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        bool => "bool",
        long or int or BigInteger => "int",
        double => "float",
        string => "str",
        IDictionary<string, object?> => "dict",
        IList<object?> => "list",
        _ => value.GetType().Name,
    };

    /// <summary>Python's <c>str(value)</c>.</summary>
    public static string Str(object? value) => value switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        int i => i.ToString(CultureInfo.InvariantCulture),
        BigInteger big => big.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        string s => s,
        _ => Repr(value),
    };

    /// <summary>Python's <c>repr(value)</c> of a JSON-like value.</summary>
    public static string Repr(object? value) => value switch
    {
        double d => FloatRepr(d),
        _ => PythonRepr.Of(ToElement(value)),
    };

    /// <summary>Python's <c>str()</c> of an exception with these arguments: empty, the one argument, or the tuple's repr.</summary>
    public static string StrOfArgs(IReadOnlyList<object?> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count == 0)
        {
            return string.Empty;
        }

        if (args.Count == 1)
        {
            return Str(args[0]);
        }

        var sb = new StringBuilder("(");
        for (int i = 0; i < args.Count; i++)
        {
            sb.Append(i > 0 ? ", " : string.Empty).Append(Repr(args[i]));
        }

        return sb.Append(')').ToString();
    }

    /// <summary>A plain value as a JSON element.</summary>
    public static JsonElement ToElement(object? value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            JsonValues.Write(writer, value);
        }

        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    private static bool IsNumber(object? v) => v is bool or long or int or BigInteger or double;

    private static double ToDouble(object? v) => v switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        int i => i,
        BigInteger big => (double)big,
        double d => d,
        _ => throw new InvalidOperationException("not a number"),
    };

    private static BigInteger ToBig(object? v) => v switch
    {
        bool b => b ? BigInteger.One : BigInteger.Zero,
        long l => l,
        int i => i,
        BigInteger big => big,
        _ => throw new InvalidOperationException("not an integer"),
    };

    /// <summary>Python's <c>repr(float)</c>: the shortest round-trip digits, a whole number with <c>.0</c>.</summary>
    private static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }

        string r = d.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal);
        return r.AsSpan().IndexOfAny(".en") < 0 ? r + ".0" : r;
    }
}
