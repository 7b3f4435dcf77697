using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;

namespace Celeriac.Database.Pickle;

/// <summary>
/// Writes Python pickles (protocol 4, which every Python 3.4+ reads) of JSON values, as Celery's database backend stores
/// results (SQLAlchemy's <c>PickleType</c>): an object becomes a <c>dict</c>, an array a <c>list</c>, a string a
/// <c>str</c>, an integral number an <c>int</c> of any size, any other number a <c>float</c>, and <c>true</c>,
/// <c>false</c>, <c>null</c> become <c>True</c>, <c>False</c>, <c>None</c>. Only data opcodes are written; nothing in
/// the output imports or calls code, except <see cref="WriteGroupResult(string, IReadOnlyList{string})"/>, which writes what Celery's
/// <c>restore_group</c> expects.
/// </summary>
public static class PickleWriter
{
    private const byte Proto = 0x80, Stop = (byte)'.', Mark = (byte)'(';
    private const byte NoneOp = (byte)'N', NewTrue = 0x88, NewFalse = 0x89;
    private const byte BinInt = (byte)'J', BinInt1 = (byte)'K', BinInt2 = (byte)'M', Long1 = 0x8a, Long4 = 0x8b, BinFloat = (byte)'G';
    private const byte ShortBinUnicode = 0x8c, BinUnicode = (byte)'X';
    private const byte EmptyList = (byte)']', Appends = (byte)'e', EmptyDict = (byte)'}', SetItems = (byte)'u';
    private const byte Tuple1 = 0x85, Tuple2 = 0x86, StackGlobal = 0x93, Memoize = 0x94, BinGet = (byte)'h', Reduce = (byte)'R';

    /// <summary>The deepest JSON nesting written (as System.Text.Json reads by default). <value>64</value></summary>
    public const int MaxDepth = 64;

    /// <summary>Pickles a JSON value (UTF-8 text). Throws <see cref="JsonException"/> when it is not JSON, and
    /// <see cref="ArgumentException"/> for a number Python's float cannot hold.</summary>
    public static byte[] FromJson(ReadOnlySpan<byte> utf8Json)
    {
        var output = new ArrayBufferWriter<byte>(utf8Json.Length + 16);
        output.Write<byte>([Proto, 4]);
        var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { MaxDepth = MaxDepth });
        if (!reader.Read())
        {
            throw new JsonException("no JSON value to pickle");
        }

        WriteValue(ref reader, output);
        output.Write<byte>([Stop]);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Pickles a parsed JSON value.</summary>
    public static byte[] FromJson(JsonElement value) => FromJson(Encoding.UTF8.GetBytes(value.GetRawText()));

    private static void WriteValue(ref Utf8JsonReader reader, ArrayBufferWriter<byte> o)
    {
        // One pass over the tokens: containers open with EMPTY_x + MARK and close with APPENDS / SETITEMS.
        int depth = 0;
        do
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    o.Write<byte>([EmptyDict, Mark]);
                    depth++;
                    break;
                case JsonTokenType.EndObject:
                    o.Write<byte>([SetItems]);
                    depth--;
                    break;
                case JsonTokenType.StartArray:
                    o.Write<byte>([EmptyList, Mark]);
                    depth++;
                    break;
                case JsonTokenType.EndArray:
                    o.Write<byte>([Appends]);
                    depth--;
                    break;
                case JsonTokenType.PropertyName:
                case JsonTokenType.String:
                    WriteString(o, reader.GetString()!);
                    break;
                case JsonTokenType.Number:
                    WriteNumber(o, reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan);
                    break;
                case JsonTokenType.True:
                    o.Write<byte>([NewTrue]);
                    break;
                case JsonTokenType.False:
                    o.Write<byte>([NewFalse]);
                    break;
                case JsonTokenType.Null:
                    o.Write<byte>([NoneOp]);
                    break;
                default:
                    throw new JsonException($"unexpected JSON token {reader.TokenType}");
            }
        }
        while (depth > 0 && reader.Read());

        if (depth != 0)
        {
            throw new JsonException("incomplete JSON value");
        }
    }

    private static void WriteNumber(ArrayBufferWriter<byte> o, ReadOnlySpan<byte> text)
    {
        if (text.IndexOfAny("."u8) < 0 && text.IndexOfAny("eE"u8) < 0)
        {
            if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long small))
            {
                WriteInt(o, small);
            }
            else
            {
                WriteBigInt(o, BigInteger.Parse(Encoding.ASCII.GetString(text), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture));
            }

            return;
        }

        double d = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (!double.IsFinite(d))
        {
            throw new ArgumentException($"the JSON number {Encoding.ASCII.GetString(text)} is beyond a Python float");
        }

        Span<byte> b = stackalloc byte[9];
        b[0] = BinFloat;
        BinaryPrimitives.WriteDoubleBigEndian(b[1..], d);
        o.Write(b);
    }

    /// <summary>Writes an int with the shortest opcode Python's pickler would use.</summary>
    internal static void WriteInt(ArrayBufferWriter<byte> o, long value)
    {
        if (value is >= 0 and <= 0xff)
        {
            o.Write<byte>([BinInt1, (byte)value]);
        }
        else if (value is >= 0 and <= 0xffff)
        {
            o.Write<byte>([BinInt2, (byte)value, (byte)(value >> 8)]);
        }
        else if (value is >= int.MinValue and <= int.MaxValue)
        {
            Span<byte> b = stackalloc byte[5];
            b[0] = BinInt;
            BinaryPrimitives.WriteInt32LittleEndian(b[1..], (int)value);
            o.Write(b);
        }
        else
        {
            WriteBigInt(o, value);
        }
    }

    private static void WriteBigInt(ArrayBufferWriter<byte> o, BigInteger value)
    {
        // LONG1/LONG4 hold the two's complement, little-endian, in as few bytes as keep the sign.
        byte[] bytes = value.ToByteArray(isUnsigned: false, isBigEndian: false);
        if (bytes.Length < 256)
        {
            o.Write<byte>([Long1, (byte)bytes.Length]);
        }
        else
        {
            Span<byte> head = stackalloc byte[5];
            head[0] = Long4;
            BinaryPrimitives.WriteInt32LittleEndian(head[1..], bytes.Length);
            o.Write(head);
        }

        o.Write(bytes);
    }

    /// <summary>Writes a str (UTF-8, as Python's pickler; a lone surrogate is refused as Python's strict codec would).</summary>
    internal static void WriteString(ArrayBufferWriter<byte> o, string value)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        if (length < 256)
        {
            o.Write<byte>([ShortBinUnicode, (byte)length]);
        }
        else
        {
            Span<byte> head = stackalloc byte[5];
            head[0] = BinUnicode;
            BinaryPrimitives.WriteUInt32LittleEndian(head[1..], (uint)length);
            o.Write(head);
        }

        Span<byte> text = o.GetSpan(length);
        int written = new UTF8Encoding(false, true).GetBytes(value, text);
        o.Advance(written);
    }

    /// <summary>
    /// Writes a group as Celery's <c>GroupResult.save()</c> pickles it on the database backend, so that Python's
    /// <c>restore_group</c> gets a <c>GroupResult</c>: <c>celery.result.GroupResult(group_id, [AsyncResult(id), ...])</c>.
    /// The members carry only their ids (no backend: Python's AsyncResult takes the app's). This is the one pickle
    /// Celeriac writes that names code, and only Celery's own result classes.
    /// </summary>
    public static byte[] WriteGroupResult(string groupId, IReadOnlyList<string> taskIds)
    {
        ArgumentNullException.ThrowIfNull(groupId);
        ArgumentNullException.ThrowIfNull(taskIds);
        var o = new ArrayBufferWriter<byte>(64 + (taskIds.Count * 48));
        o.Write<byte>([Proto, 4]);
        WriteString(o, "celery.result");
        o.Write<byte>([Memoize]); // memo 0: the module name, shared by both globals
        WriteString(o, "GroupResult");
        o.Write<byte>([StackGlobal]);
        WriteString(o, groupId);
        o.Write<byte>([EmptyList, Mark]);
        for (int i = 0; i < taskIds.Count; i++)
        {
            if (i == 0)
            {
                o.Write<byte>([BinGet, 0]);
                WriteString(o, "AsyncResult");
                o.Write<byte>([StackGlobal, Memoize]); // memo 1: AsyncResult
            }
            else
            {
                o.Write<byte>([BinGet, 1]);
            }

            WriteString(o, taskIds[i]);
            o.Write<byte>([Tuple1, Reduce]);
        }

        o.Write<byte>([Appends, Tuple2, Reduce, Stop]);
        return o.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Writes a group whose members are given as Celery's result tuples (<c>[[id, parent], children]</c>, where a member
    /// with a list of children is a nested group), as <see cref="WriteGroupResult(string, IReadOnlyList{string})"/> does.
    /// </summary>
    public static byte[] WriteGroupResult(string groupId, JsonElement memberTuples)
    {
        ArgumentNullException.ThrowIfNull(groupId);
        var o = new ArrayBufferWriter<byte>(256);
        o.Write<byte>([Proto, 4]);
        WriteGroup(o, groupId, memberTuples, 0);
        o.Write<byte>([Stop]);
        return o.WrittenSpan.ToArray();
    }

    private static void WriteGroup(ArrayBufferWriter<byte> o, string groupId, JsonElement members, int depth)
    {
        if (depth > MaxDepth || members.ValueKind != JsonValueKind.Array)
        {
            throw new ArgumentException("group members are not result tuples (or nest too deep)", nameof(members));
        }

        WriteGlobal(o, "GroupResult");
        WriteString(o, groupId);
        o.Write<byte>([EmptyList, Mark]);
        foreach (JsonElement member in members.EnumerateArray())
        {
            string id = member.ValueKind == JsonValueKind.Array && member.GetArrayLength() >= 2 && member[0].ValueKind == JsonValueKind.Array
                && member[0][0].ValueKind == JsonValueKind.String
                ? member[0][0].GetString()!
                : throw new ArgumentException("a group member is not a result tuple: " + member.GetRawText(), nameof(members));
            if (member[1].ValueKind == JsonValueKind.Array)
            {
                WriteGroup(o, id, member[1], depth + 1);
            }
            else
            {
                WriteGlobal(o, "AsyncResult");
                WriteString(o, id);
                o.Write<byte>([Tuple1, Reduce]);
            }
        }

        o.Write<byte>([Appends, Tuple2, Reduce]);
    }

    private static void WriteGlobal(ArrayBufferWriter<byte> o, string name)
    {
        WriteString(o, "celery.result");
        WriteString(o, name);
        o.Write<byte>([StackGlobal]);
    }
}
