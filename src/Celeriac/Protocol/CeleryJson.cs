using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Celeriac.Protocol;

/// <summary>The JSON settings Celeriac uses for task arguments and results, and Celery's date format.</summary>
public static class CeleryJson
{
    /// <summary>
    /// Options for user values (task arguments and return values): camel-case off so that
    /// property names stay as declared, numbers strict, reflection as the fallback resolver.
    /// </summary>
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    /// <summary>Content type of every message Celeriac writes.</summary>
    public const string ContentType = "application/json";

    /// <summary>Content encoding of every message Celeriac writes.</summary>
    public const string ContentEncoding = "utf-8";

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions
        {
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            NumberHandling = JsonNumberHandling.Strict,
            MaxDepth = JsonValues.MaxDepth,
            // Reflection is the fallback for users' own types, unless the app is trimmed or AOT-compiled with reflection off
            // (the feature switch lets the trimmer drop it); then their types come from their JsonSerializerContext.
            TypeInfoResolver = JsonSerializer.IsReflectionEnabledByDefault
                ? JsonTypeInfoResolver.Combine(CeleriacJsonContext.Default, new DefaultJsonTypeInfoResolver())
                : CeleriacJsonContext.Default,
            Converters = { new PythonFloatConverter() },
        };
        options.MakeReadOnly();
        return options;
    }

    /// <summary>Formats a time as Celery writes ETA and expiry headers: ISO 8601 with the UTC offset.</summary>
    public static string FormatIso(DateTimeOffset time) =>
        time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'+00:00'", CultureInfo.InvariantCulture);

    /// <summary>The format of <c>date_done</c> as Celery 5.2 stores it: ISO 8601, UTC, without an offset.</summary>
    internal const string DateDoneFormat = "yyyy-MM-dd'T'HH:mm:ss.ffffff";

    /// <summary>The length of a <see cref="DateDoneFormat"/> time.</summary>
    internal const int DateDoneLength = 26;

    /// <summary>
    /// Writes a UTC time in <see cref="DateDoneFormat"/> as UTF-8 into <paramref name="utf8"/> (at least
    /// <see cref="DateDoneLength"/> bytes): once per task on the hot path, where the general formatter's parsing of the
    /// format string was most of the result document's cost.
    /// </summary>
    internal static int WriteDateDone(DateTime utc, Span<byte> utf8)
    {
        Digits(utf8[..4], utc.Year);
        utf8[4] = (byte)'-';
        Digits(utf8.Slice(5, 2), utc.Month);
        utf8[7] = (byte)'-';
        Digits(utf8.Slice(8, 2), utc.Day);
        utf8[10] = (byte)'T';
        Digits(utf8.Slice(11, 2), utc.Hour);
        utf8[13] = (byte)':';
        Digits(utf8.Slice(14, 2), utc.Minute);
        utf8[16] = (byte)':';
        Digits(utf8.Slice(17, 2), utc.Second);
        utf8[19] = (byte)'.';
        Digits(utf8.Slice(20, 6), (int)(utc.Ticks % TimeSpan.TicksPerSecond / 10));
        return DateDoneLength;

        static void Digits(Span<byte> to, int value)
        {
            for (int i = to.Length - 1; i >= 0; i--)
            {
                to[i] = (byte)('0' + (value % 10));
                value /= 10;
            }
        }
    }

    /// <summary>
    /// Parses an ISO 8601 time as Celery reads one; a time without an offset is taken as UTC
    /// (Celery's <c>enable_utc</c> default).
    /// </summary>
    public static bool TryParseIso(string? text, out DateTimeOffset time)
    {
        if (!string.IsNullOrWhiteSpace(text) &&
            DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time))
        {
            return true;
        }

        time = default;
        return false;
    }
}

/// <summary>Writes doubles as Python's json does (<c>2.0</c>, not <c>2</c>), so Python readers get floats back.</summary>
internal sealed class PythonFloatConverter : JsonConverter<double>
{
    public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetDouble();

    public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options) => JsonValues.WriteDouble(writer, value);
}

[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(int[]))]
[JsonSerializable(typeof(long[]))]
[JsonSerializable(typeof(double[]))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(List<int>))]
[JsonSerializable(typeof(List<long>))]
[JsonSerializable(typeof(List<double>))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class CeleriacJsonContext : JsonSerializerContext;
