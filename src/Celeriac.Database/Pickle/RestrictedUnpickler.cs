using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Celeriac.Database.Pickle;

/// <summary>
/// Reads Python pickles of JSON-like values (None, bool, int of any size, float, str, bytes, list, tuple, dict; also
/// set/frozenset) into JSON, without ever importing or calling anything: it interprets only data opcodes, of every
/// protocol 0 to 5, and refuses every opcode that would import or call code (<c>GLOBAL</c>, <c>STACK_GLOBAL</c>,
/// <c>REDUCE</c>, <c>BUILD</c>, <c>INST</c>, <c>OBJ</c>, <c>NEWOBJ</c>, <c>NEWOBJ_EX</c>, <c>EXT1/2/4</c>,
/// <c>PERSID</c>, <c>BINPERSID</c>, out-of-band buffers) with an <see cref="UnsafePickleException"/> naming the opcode.
/// </summary>
/// <remarks>
/// <para>JSON has no tuple, bytes or set: a tuple or set reads as an array, bytes as a string (UTF-8 when they are
/// valid UTF-8, else each byte as the character of that code, Latin-1), dict keys that are int, float, bool or None
/// as Python's <c>json.dumps</c> turns them into strings. NaN and infinities are refused (JSON has none).</para>
/// <para>Group pickles: Celery's database backend pickles a <c>celery.result.GroupResult</c> object. For those alone
/// (<see cref="ReadGroupResult"/>) a fixed set of Celery's class names (<c>celery.result.GroupResult</c>,
/// <c>celery.result.AsyncResult</c>, <c>celery.app.base._unpickle_appattr</c> with the names <c>GroupResult</c> or
/// <c>AsyncResult</c> only (an app's own result classes), <c>celery.backends.base.unpickle_backend</c>,
/// <c>celery.backends.database.DatabaseBackend</c>, <c>datetime.timedelta</c>) is recognised as inert data markers:
/// their names are compared as text, nothing is imported, and a <c>REDUCE</c> on a marker builds a data node (the
/// ids and members) instead of calling anything. Every other name is refused.</para>
/// <para>Limits keep hostile input cheap: the input's size, the nesting depth, the memo's size and the number of
/// values produced (a memo reference repeated is counted each time, so a "billion laughs" fails fast), and a cycle
/// through the memo is refused.</para>
/// </remarks>
public static class RestrictedUnpickler
{
    /// <summary>The largest pickle read. <value>64 MiB</value></summary>
    public const int MaxInputBytes = 64 << 20;

    /// <summary>The deepest nesting of containers read. <value>64</value> (as deep as System.Text.Json reads by default)</summary>
    public const int MaxDepth = PickleWriter.MaxDepth;

    /// <summary>The most memo entries. <value>1,000,000</value></summary>
    public const int MaxMemo = 1_000_000;

    /// <summary>The most values produced in the JSON. <value>10,000,000</value></summary>
    public const int MaxValues = 10_000_000;

    private static readonly JsonWriterOptions s_writerOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = false,
        MaxDepth = MaxDepth + 8,
    };

    private static readonly UTF8Encoding s_strictUtf8 = new(false, true);

    /// <summary>Reads a pickle of a JSON-like value and returns it as UTF-8 JSON.</summary>
    /// <exception cref="UnsafePickleException">The pickle would import or call code.</exception>
    /// <exception cref="UnpicklingException">It is malformed, truncated, over a limit, or not JSON-like.</exception>
    public static byte[] ToJson(ReadOnlySpan<byte> pickle)
    {
        object? value = new Machine(pickle, markers: false).Run();
        return WriteJson(value);
    }

    /// <summary>
    /// Reads a group pickled by Celery's database backend (a <c>celery.result.GroupResult</c>, see the remarks) and
    /// returns it as Celery's <c>GroupResult.as_tuple()</c> in JSON: <c>[[group_id, null], [[[task_id, parent], null], ...]]</c>
    /// (a nested group's member is its own tuple). Anything else that is JSON-like is returned as is, for a caller to judge.
    /// </summary>
    /// <exception cref="UnsafePickleException">The pickle names code other than Celery's result classes.</exception>
    /// <exception cref="UnpicklingException">It is malformed, truncated or over a limit.</exception>
    public static byte[] ReadGroupResult(ReadOnlySpan<byte> pickle)
    {
        object? value = new Machine(pickle, markers: true).Run();
        return WriteJson(value);
    }

    private static byte[] WriteJson(object? value)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, s_writerOptions))
        {
            var emitter = new Emitter(w);
            emitter.Write(value, 0);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>A Python tuple (immutable, so it is an array here, not a list).</summary>
    private sealed class PyTuple(object?[] items)
    {
        public object?[] Items { get; } = items;
    }

    private sealed class PyDict
    {
        public List<KeyValuePair<object?, object?>> Items { get; } = [];
    }

    private sealed class PySet
    {
        public List<object?> Items { get; } = [];
    }

    /// <summary>An allowed Celery name, seen as text: never imported.</summary>
    private sealed class Marker(string name)
    {
        public string Name { get; } = name;
    }

    /// <summary>A REDUCE on a marker: the data it would have been built from.</summary>
    private sealed class MarkerNode(string name, PyTuple args)
    {
        public string Name { get; } = name;

        public PyTuple Args { get; } = args;
    }

    private const string AppAttr = "celery.app.base._unpickle_appattr";

    private static readonly HashSet<string> s_markerNames = new(StringComparer.Ordinal)
    {
        AppAttr,
        "celery.result.GroupResult",
        "celery.result.AsyncResult",
        "celery.backends.base.unpickle_backend",
        "celery.backends.database.DatabaseBackend",
        "datetime.timedelta",
    };

    private static readonly object s_markSentinel = new();

    private ref struct Machine
    {
        private readonly ReadOnlySpan<byte> _data;
        private readonly bool _markers;
        private readonly List<object?> _stack;
        private readonly List<int> _marks;
        private readonly Dictionary<long, object?> _memo;
        private int _pos;
        private int _opStart;

        public Machine(ReadOnlySpan<byte> data, bool markers)
        {
            if (data.Length > MaxInputBytes)
            {
                throw new UnpicklingException($"pickle of {data.Length} bytes is over the limit of {MaxInputBytes}");
            }

            _data = data;
            _markers = markers;
            _stack = [];
            _marks = [];
            _memo = [];
            _pos = 0;
            _opStart = 0;
        }

        public object? Run()
        {
            while (true)
            {
                _opStart = _pos;
                byte op = Byte();
                switch (op)
                {
                    case 0x80: // PROTO
                        if (Byte() > 5)
                        {
                            throw Error("unsupported pickle protocol " + _data[_pos - 1].ToString(CultureInfo.InvariantCulture));
                        }

                        break;
                    case 0x95: // FRAME: a size hint only
                        Take(8);
                        break;
                    case (byte)'.': // STOP
                        if (_marks.Count > 0 || _stack.Count == 0)
                        {
                            throw Error("STOP with an open MARK or an empty stack");
                        }

                        return _stack[^1];
                    case (byte)'(': // MARK
                        _marks.Add(_stack.Count);
                        break;
                    case (byte)'0': // POP
                        if (_marks.Count > 0 && _marks[^1] == _stack.Count)
                        {
                            _marks.RemoveAt(_marks.Count - 1); // Python's POP of a MARK
                        }
                        else
                        {
                            Pop();
                        }

                        break;
                    case (byte)'1': // POP_MARK
                        PopMark();
                        break;
                    case (byte)'2': // DUP
                        Push(Top());
                        break;

                    case (byte)'N': Push(null); break;
                    case 0x88: Push(true); break;
                    case 0x89: Push(false); break;
                    case (byte)'I': Push(ParseIntLine(Line())); break;
                    case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                    case (byte)'K': Push((long)Byte()); break;
                    case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                    case (byte)'L': Push(ParseLongLine(Line())); break;
                    case 0x8a: Push(Long(Take(Byte()))); break;
                    case 0x8b: Push(Long(Take(Length4Signed()))); break;
                    case (byte)'F': Push(ParseFloatLine(Line())); break;
                    case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;

                    case (byte)'S': Push(ParseStringLine(Line())); break;
                    case (byte)'T': Push(Ascii(Take(Length4Signed()))); break;
                    case (byte)'U': Push(Ascii(Take(Byte()))); break;
                    case (byte)'V': Push(RawUnicodeEscape(Line())); break;
                    case (byte)'X': Push(Utf8(Take(Length4()))); break;
                    case 0x8c: Push(Utf8(Take(Byte()))); break;
                    case 0x8d: Push(Utf8(Take(Length8()))); break;
                    case (byte)'B': Push(Take(Length4()).ToArray()); break;
                    case (byte)'C': Push(Take(Byte()).ToArray()); break;
                    case 0x8e: Push(Take(Length8()).ToArray()); break;
                    case 0x96: Push(Take(Length8()).ToArray()); break; // BYTEARRAY8

                    case (byte)']': Push(new List<object?>()); break;
                    case (byte)'l': Push(new List<object?>(PopMark())); break;
                    case (byte)'a':
                        {
                            object? item = Pop();
                            AsList(Top(), "APPEND").Add(item);
                            break;
                        }

                    case (byte)'e':
                        {
                            List<object?> items = PopMark();
                            object? target = Top();
                            if (target is PySet set)
                            {
                                set.Items.AddRange(items); // Python's APPENDS calls extend/add on other types too
                            }
                            else
                            {
                                AsList(target, "APPENDS").AddRange(items);
                            }

                            break;
                        }

                    case (byte)')': Push(new PyTuple([])); break;
                    case (byte)'t': Push(new PyTuple([.. PopMark()])); break;
                    case 0x85: Push(new PyTuple([Pop()])); break;
                    case 0x86:
                        {
                            object? b = Pop(), a = Pop();
                            Push(new PyTuple([a, b]));
                            break;
                        }

                    case 0x87:
                        {
                            object? c = Pop(), b = Pop(), a = Pop();
                            Push(new PyTuple([a, b, c]));
                            break;
                        }

                    case (byte)'}': Push(new PyDict()); break;
                    case (byte)'d':
                        {
                            List<object?> items = PopMark();
                            var dict = new PyDict();
                            AddPairs(dict, items);
                            Push(dict);
                            break;
                        }

                    case (byte)'s':
                        {
                            object? value = Pop(), key = Pop();
                            AsDict(Top(), "SETITEM").Items.Add(new(key, value));
                            break;
                        }

                    case (byte)'u':
                        {
                            List<object?> items = PopMark();
                            AddPairs(AsDict(Top(), "SETITEMS"), items);
                            break;
                        }

                    case 0x8f: Push(new PySet()); break;
                    case 0x90:
                        {
                            List<object?> items = PopMark();
                            if (Top() is not PySet set)
                            {
                                throw Error("ADDITEMS on a value that is not a set");
                            }

                            set.Items.AddRange(items);
                            break;
                        }

                    case 0x91:
                        {
                            var set = new PySet();
                            set.Items.AddRange(PopMark());
                            Push(set);
                            break;
                        }

                    case (byte)'g': Push(MemoGet(ParseIndexLine(Line()))); break;
                    case (byte)'h': Push(MemoGet(Byte())); break;
                    case (byte)'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                    case (byte)'p': MemoPut(ParseIndexLine(Line())); break;
                    case (byte)'q': MemoPut(Byte()); break;
                    case (byte)'r': MemoPut(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break;
                    case 0x94: MemoPut(_memo.Count); break; // MEMOIZE

                    case (byte)'c': // GLOBAL
                        {
                            string module = Ascii(Line()), name = Ascii(Line());
                            PushGlobal("GLOBAL", module, name);
                            break;
                        }

                    case 0x93: // STACK_GLOBAL
                        {
                            object? name = Pop(), module = Pop();
                            if (module is not string m || name is not string n)
                            {
                                throw Refused("STACK_GLOBAL", null);
                            }

                            PushGlobal("STACK_GLOBAL", m, n);
                            break;
                        }

                    case (byte)'R': // REDUCE
                        {
                            object? args = Pop(), callable = Pop();
                            if (callable is not Marker marker)
                            {
                                throw Refused("REDUCE", null);
                            }

                            if (args is not PyTuple tuple)
                            {
                                throw Error($"REDUCE of {marker.Name} without an argument tuple");
                            }

                            if (marker.Name == AppAttr)
                            {
                                // An app's own result class: _unpickle_appattr('GroupResult', (id, results)) is
                                // app.GroupResult(id, results); read as celery.result's, and only for those two names.
                                if (tuple.Items is not [string attr, PyTuple inner] || attr is not ("GroupResult" or "AsyncResult"))
                                {
                                    throw Refused("REDUCE", AppAttr + (tuple.Items is [string other, ..] ? "('" + other + "')" : ""));
                                }

                                Push(new MarkerNode("celery.result." + attr, inner));
                                break;
                            }

                            Push(new MarkerNode(marker.Name, tuple));
                            break;
                        }

                    case (byte)'b': throw Refused("BUILD", null);
                    case (byte)'i':
                        {
                            string module = Ascii(Line()), name = Ascii(Line());
                            throw Refused("INST", module + "." + name);
                        }

                    case (byte)'o': throw Refused("OBJ", null);
                    case 0x81: throw Refused("NEWOBJ", null);
                    case 0x92: throw Refused("NEWOBJ_EX", null);
                    case 0x82: throw Refused("EXT1", null);
                    case 0x83: throw Refused("EXT2", null);
                    case 0x84: throw Refused("EXT4", null);
                    case (byte)'P': throw Refused("PERSID", null);
                    case (byte)'Q': throw Refused("BINPERSID", null);
                    case 0x97: throw Refused("NEXT_BUFFER", null);
                    case 0x98: throw Refused("READONLY_BUFFER", null);
                    default:
                        throw Error($"unknown pickle opcode 0x{op:x2}");
                }
            }
        }

        private void PushGlobal(string opcode, string module, string name)
        {
            string full = module + "." + name;
            if (!_markers || !s_markerNames.Contains(full))
            {
                throw Refused(opcode, full);
            }

            Push(new Marker(full));
        }

        private readonly UnsafePickleException Refused(string opcode, string? name) => new(opcode, name, _opStart);

        private readonly UnpicklingException Error(string message) =>
            new($"Unreadable pickle at offset {_opStart}: {message}.");

        private void Push(object? value)
        {
            if (_stack.Count >= MaxValues)
            {
                throw Error("too many values on the stack");
            }

            _stack.Add(value);
        }

        private object? Pop()
        {
            int floor = _marks.Count > 0 ? _marks[^1] : 0;
            if (_stack.Count <= floor)
            {
                throw Error("stack underflow");
            }

            object? value = _stack[^1];
            _stack.RemoveAt(_stack.Count - 1);
            return value;
        }

        private readonly object? Top()
        {
            int floor = _marks.Count > 0 ? _marks[^1] : 0;
            if (_stack.Count <= floor)
            {
                throw Error("stack underflow");
            }

            return _stack[^1];
        }

        private List<object?> PopMark()
        {
            if (_marks.Count == 0)
            {
                throw Error("no MARK to pop to");
            }

            int at = _marks[^1];
            _marks.RemoveAt(_marks.Count - 1);
            List<object?> items = _stack.GetRange(at, _stack.Count - at);
            _stack.RemoveRange(at, _stack.Count - at);
            return items;
        }

        private readonly List<object?> AsList(object? value, string opcode) =>
            value as List<object?> ?? throw Error($"{opcode} on a value that is not a list");

        private readonly PyDict AsDict(object? value, string opcode) =>
            value as PyDict ?? throw Error($"{opcode} on a value that is not a dict");

        private readonly void AddPairs(PyDict dict, List<object?> items)
        {
            if (items.Count % 2 != 0)
            {
                throw Error("odd number of items for a dict");
            }

            for (int i = 0; i < items.Count; i += 2)
            {
                dict.Items.Add(new(items[i], items[i + 1]));
            }
        }

        private readonly object? MemoGet(long index) =>
            _memo.TryGetValue(index, out object? value) ? value : throw Error($"memo {index} was never stored");

        private void MemoPut(long index)
        {
            if (_memo.Count >= MaxMemo && !_memo.ContainsKey(index))
            {
                throw Error($"more than {MaxMemo} memo entries");
            }

            _memo[index] = Top();
        }

        private byte Byte()
        {
            if (_pos >= _data.Length)
            {
                throw new UnpicklingException($"Truncated pickle: it ends at offset {_data.Length} without STOP.");
            }

            return _data[_pos++];
        }

        private ReadOnlySpan<byte> Take(long count)
        {
            if (count < 0 || count > _data.Length - _pos)
            {
                throw new UnpicklingException($"Truncated pickle: opcode at offset {_opStart} wants {count} bytes, {_data.Length - _pos} are left.");
            }

            ReadOnlySpan<byte> slice = _data.Slice(_pos, (int)count);
            _pos += (int)count;
            return slice;
        }

        private ReadOnlySpan<byte> Line()
        {
            int end = _data[_pos..].IndexOf((byte)'\n');
            if (end < 0)
            {
                throw new UnpicklingException($"Truncated pickle: opcode at offset {_opStart} has no end of line.");
            }

            ReadOnlySpan<byte> line = _data.Slice(_pos, end);
            _pos += end + 1;
            return line;
        }

        private long Length4() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

        private long Length4Signed() => BinaryPrimitives.ReadInt32LittleEndian(Take(4)) is var n and >= 0 ? n : throw Error("negative length");

        private long Length8()
        {
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
            return n > (ulong)MaxInputBytes ? throw new UnpicklingException($"Truncated pickle: opcode at offset {_opStart} wants {n} bytes.") : (long)n;
        }

        private static object Long(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length == 0)
            {
                return 0L;
            }

            return Narrow(new BigInteger(bytes, isUnsigned: false, isBigEndian: false));
        }

        /// <summary>An int as a long when it fits (most do), else as a BigInteger.</summary>
        [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1859", Justification = "It returns a long or a BigInteger, boxed on purpose.")]
        private static object Narrow(BigInteger big)
        {
            if (big >= long.MinValue && big <= long.MaxValue)
            {
                return (long)big;
            }

            return big;
        }

        private readonly object ParseIntLine(ReadOnlySpan<byte> line)
        {
            // Protocol 0 writes True and False as "I01" and "I00".
            if (line.SequenceEqual("01"u8))
            {
                return true;
            }

            if (line.SequenceEqual("00"u8))
            {
                return false;
            }

            return ParseInteger(line);
        }

        private readonly object ParseLongLine(ReadOnlySpan<byte> line) =>
            ParseInteger(line.Length > 0 && line[^1] == (byte)'L' ? line[..^1] : line);

        private readonly object ParseInteger(ReadOnlySpan<byte> text)
        {
            if (text.Length > 10_000 || !BigInteger.TryParse(Encoding.ASCII.GetString(text), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out BigInteger big))
            {
                throw Error("not an integer: " + Encoding.ASCII.GetString(text[..Math.Min(text.Length, 40)]));
            }

            return Narrow(big);
        }

        private readonly double ParseFloatLine(ReadOnlySpan<byte> line) =>
            double.TryParse(line, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d
            : line.SequenceEqual("nan"u8) ? double.NaN
            : line.SequenceEqual("inf"u8) ? double.PositiveInfinity
            : line.SequenceEqual("-inf"u8) ? double.NegativeInfinity
            : throw Error("not a float: " + Encoding.ASCII.GetString(line[..Math.Min(line.Length, 40)]));

        private readonly long ParseIndexLine(ReadOnlySpan<byte> line) =>
            long.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : throw Error("not a memo index");

        private readonly string Utf8(ReadOnlySpan<byte> bytes)
        {
            try
            {
                return s_strictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException e)
            {
                throw new UnpicklingException($"Unreadable pickle at offset {_opStart}: a str that is not valid UTF-8 (a lone surrogate?).", e);
            }
        }

        private readonly string Ascii(ReadOnlySpan<byte> bytes)
        {
            // Python 3 reads Python 2's str as ASCII by default; the names of GLOBAL and INST are ASCII too.
            foreach (byte b in bytes)
            {
                if (b > 0x7f)
                {
                    throw Error("a Python 2 str that is not ASCII");
                }
            }

            return Encoding.ASCII.GetString(bytes);
        }

        private readonly string ParseStringLine(ReadOnlySpan<byte> line)
        {
            // STRING: Python 2's repr of a str, quoted, with backslash escapes.
            if (line.Length < 2 || line[0] != line[^1] || (line[0] != (byte)'\'' && line[0] != (byte)'"'))
            {
                throw Error("STRING without quotes");
            }

            var sb = new StringBuilder();
            ReadOnlySpan<byte> s = line[1..^1];
            for (int i = 0; i < s.Length; i++)
            {
                byte c = s[i];
                if (c != (byte)'\\' || i + 1 >= s.Length)
                {
                    sb.Append((char)c);
                    continue;
                }

                byte e = s[++i];
                switch (e)
                {
                    case (byte)'n': sb.Append('\n'); break;
                    case (byte)'r': sb.Append('\r'); break;
                    case (byte)'t': sb.Append('\t'); break;
                    case (byte)'x' when i + 2 < s.Length + 0 && byte.TryParse(s.Slice(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte x):
                        sb.Append((char)x);
                        i += 2;
                        break;
                    default: sb.Append((char)e); break;
                }
            }

            string text = sb.ToString();
            return text.Any(ch => ch > 0x7f) ? throw Error("a Python 2 str that is not ASCII") : text;
        }

        private readonly string RawUnicodeEscape(ReadOnlySpan<byte> line)
        {
            // UNICODE (protocol 0): Latin-1 bytes with \uXXXX and \UXXXXXXXX escapes (Python's raw-unicode-escape).
            var sb = new StringBuilder(line.Length);
            for (int i = 0; i < line.Length; i++)
            {
                byte c = line[i];
                if (c == (byte)'\\' && i + 1 < line.Length && (line[i + 1] == (byte)'u' || line[i + 1] == (byte)'U'))
                {
                    int digits = line[i + 1] == (byte)'u' ? 4 : 8;
                    if (i + 2 + digits > line.Length || !int.TryParse(line.Slice(i + 2, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code) || code > 0x10ffff)
                    {
                        throw Error("bad \\u escape in UNICODE");
                    }

                    if (code > 0xffff)
                    {
                        sb.Append(char.ConvertFromUtf32(code));
                    }
                    else
                    {
                        sb.Append((char)code);
                    }

                    i += 1 + digits;
                }
                else
                {
                    sb.Append((char)c);
                }
            }

            return sb.ToString();
        }
    }

    /// <summary>Writes the object graph as JSON, with the depth, size and cycle limits.</summary>
    private sealed class Emitter(Utf8JsonWriter w)
    {
        private readonly HashSet<object> _open = new(ReferenceEqualityComparer.Instance);
        private int _values;

        public void Write(object? value, int depth)
        {
            if (++_values > MaxValues)
            {
                throw new UnpicklingException($"Pickle expands to more than {MaxValues} values (memo references repeated?).");
            }

            switch (value)
            {
                case null: w.WriteNullValue(); return;
                case bool b: w.WriteBooleanValue(b); return;
                case long l: w.WriteNumberValue(l); return;
                case BigInteger big: w.WriteRawValue(big.ToString(CultureInfo.InvariantCulture)); return;
                case double d: WriteFloat(d); return;
                case string s: w.WriteStringValue(s); return;
                case byte[] bytes: w.WriteStringValue(BytesText(bytes)); return;
                case Marker m: throw new UnpicklingException($"Unreadable group pickle: {m.Name} is not called.");
                case MarkerNode node: WriteMarkerNode(node, depth); return;
                default: break;
            }

            if (depth >= MaxDepth)
            {
                throw new UnpicklingException($"Pickle nests containers deeper than {MaxDepth} levels.");
            }

            if (!_open.Add(value))
            {
                throw new UnpicklingException("Pickle holds a container that contains itself; JSON cannot.");
            }

            switch (value)
            {
                case List<object?> list: WriteArray(list, depth); break;
                case PyTuple tuple: WriteArray(tuple.Items, depth); break;
                case PySet set: WriteArray(set.Items, depth); break;
                case PyDict dict:
                    w.WriteStartObject();
                    foreach (KeyValuePair<object?, object?> pair in dict.Items)
                    {
                        w.WritePropertyName(KeyText(pair.Key));
                        Write(pair.Value, depth + 1);
                    }

                    w.WriteEndObject();
                    break;
                default:
                    throw new UnpicklingException("Pickle holds a value with no JSON form: " + value.GetType().Name);
            }

            _open.Remove(value);
        }

        private void WriteArray(IEnumerable<object?> items, int depth)
        {
            w.WriteStartArray();
            foreach (object? item in items)
            {
                Write(item, depth + 1);
            }

            w.WriteEndArray();
        }

        private void WriteFloat(double d)
        {
            if (!double.IsFinite(d))
            {
                throw new UnpicklingException($"Pickle holds the float {d.ToString(CultureInfo.InvariantCulture)}, which JSON cannot.");
            }

            w.WriteRawValue(FloatText(d));
        }

        private void WriteMarkerNode(MarkerNode node, int depth)
        {
            // Celery's result classes, as data: GroupResult(id, results) and AsyncResult(id, backend, task_name, app, parent)
            // become GroupResult.as_tuple() / AsyncResult.as_tuple(); a backend or timedelta is only ever an argument.
            object?[] args = node.Args.Items;
            if (depth >= MaxDepth)
            {
                throw new UnpicklingException($"Pickle nests containers deeper than {MaxDepth} levels.");
            }

            switch (node.Name)
            {
                case "celery.result.GroupResult" when args.Length >= 1 && args[0] is string id:
                    w.WriteStartArray();
                    w.WriteStartArray();
                    w.WriteStringValue(id);
                    w.WriteNullValue();
                    w.WriteEndArray();
                    object? results = args.Length > 1 ? args[1] : null;
                    if (results is List<object?> or PyTuple)
                    {
                        Write(results, depth + 1);
                    }
                    else
                    {
                        w.WriteStartArray();
                        w.WriteEndArray();
                    }

                    w.WriteEndArray();
                    return;
                case "celery.result.AsyncResult" when args.Length >= 1 && args[0] is string id:
                    w.WriteStartArray();
                    w.WriteStartArray();
                    w.WriteStringValue(id);
                    object? parent = args.Length > 4 ? args[4] : null;
                    if (parent is MarkerNode { Name: "celery.result.AsyncResult" or "celery.result.GroupResult" } p)
                    {
                        WriteMarkerNode(p, depth + 1);
                    }
                    else
                    {
                        w.WriteNullValue();
                    }

                    w.WriteEndArray();
                    w.WriteNullValue();
                    w.WriteEndArray();
                    return;
                case "celery.backends.base.unpickle_backend" or "datetime.timedelta":
                    w.WriteNullValue(); // an argument of AsyncResult, never read back
                    return;
                default:
                    throw new UnpicklingException($"Unreadable group pickle: {node.Name} with arguments it does not take.");
            }
        }

        private static string KeyText(object? key) => key switch
        {
            string s => s,
            long l => l.ToString(CultureInfo.InvariantCulture),
            BigInteger big => big.ToString(CultureInfo.InvariantCulture),
            bool b => b ? "true" : "false",
            null => "null",
            double d when double.IsFinite(d) => Encoding.UTF8.GetString(FloatText(d)),
            _ => throw new UnpicklingException($"Pickle holds a dict key of type {TypeName(key)}, which JSON cannot."),
        };

        private static string TypeName(object? value) => value switch
        {
            PyTuple => "tuple",
            byte[] => "bytes",
            PySet => "frozenset",
            _ => value?.GetType().Name ?? "None",
        };

        private static string BytesText(byte[] bytes)
        {
            try
            {
                return s_strictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                return Encoding.Latin1.GetString(bytes);
            }
        }
    }

    /// <summary>A float as Python's <c>repr</c> would write it in JSON: the shortest round trip, always with a <c>.</c> or exponent.</summary>
    internal static byte[] FloatText(double d)
    {
        string text = d.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal);
        if (!text.Contains('.', StringComparison.Ordinal) && !text.Contains('e', StringComparison.Ordinal))
        {
            text += ".0";
        }

        return Encoding.ASCII.GetBytes(text);
    }
}
