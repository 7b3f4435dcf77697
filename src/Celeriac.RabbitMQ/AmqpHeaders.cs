using System.Globalization;
using System.Numerics;
using System.Text;

namespace Celeriac.RabbitMQ;

/// <summary>
/// Converts header values between Celeriac's JSON-shaped model and AMQP field tables, as py-amqp types them:
/// strings as long strings (<c>S</c>), None as void (<c>V</c>), booleans (<c>t</c>), integers as 32-bit (<c>I</c>)
/// when they fit and 64-bit (<c>l</c>) when not, floats as doubles (<c>d</c>), lists as arrays (<c>A</c>) and
/// dicts as tables (<c>F</c>).
/// </summary>
internal static class AmqpHeaders
{
    public static Dictionary<string, object?> ToAmqp(IDictionary<string, object?> headers)
    {
        var table = new Dictionary<string, object?>(headers.Count, StringComparer.Ordinal);
        foreach (KeyValuePair<string, object?> h in headers)
        {
            table[h.Key] = ToAmqpValue(h.Value);
        }

        return table;
    }

    private static object? ToAmqpValue(object? value) => value switch
    {
        null => null,
        string s => s,
        bool b => b,
        int i => i,
        long l => l is >= int.MinValue and <= int.MaxValue ? (int)l : l,
        double d => d,
        float f => (double)f,
        decimal m => m,

        // AMQP has no big integers: they travel as their decimal text, as kombu's JSON would show them.
        BigInteger big => big.ToString(CultureInfo.InvariantCulture),
        IDictionary<string, object?> dict => ToAmqp(dict),
        System.Collections.IEnumerable list => list.Cast<object?>().Select(ToAmqpValue).ToList(),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture),
    };

    public static Dictionary<string, object?> FromAmqp(IDictionary<string, object?>? table)
    {
        var headers = new Dictionary<string, object?>(table?.Count ?? 0, StringComparer.Ordinal);
        if (table is null)
        {
            return headers;
        }

        foreach (KeyValuePair<string, object?> h in table)
        {
            headers[h.Key] = FromAmqpValue(h.Value);
        }

        return headers;
    }

    private static object? FromAmqpValue(object? value) => value switch
    {
        null => null,
        byte[] bytes => Encoding.UTF8.GetString(bytes),
        string s => s,
        bool b => b,
        byte n => (long)n,
        sbyte n => (long)n,
        short n => (long)n,
        ushort n => (long)n,
        int n => (long)n,
        uint n => (long)n,
        long n => n,
        float f => (double)f,
        double d => d,
        decimal m => (double)m,
        global::RabbitMQ.Client.AmqpTimestamp t => t.UnixTime,
        IDictionary<string, object?> dict => FromAmqp(dict),
        System.Collections.IEnumerable list => list.Cast<object?>().Select(FromAmqpValue).ToList(),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture),
    };
}
