using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Celeriac.Database.Pickle;
using FsCheck;
using FsCheck.Fluent;

namespace Celeriac.Tests.Database;

/// <summary>
/// The pickle codec of the database backend: what Celeriac writes reads back the same (FsCheck) and reads in Python;
/// what Python writes of JSON-like values reads here in every protocol; and hostile pickles are refused with a clear
/// error while nothing runs.
/// </summary>
public sealed class RestrictedUnpicklerTests
{
    private static readonly Config s_config = Config.QuickThrowOnFailure.WithMaxTest(500);
    private static readonly JsonSerializerOptions s_relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A JSON value as canonical text: what the unpickler writes for the pickle of that value.</summary>
    private static Gen<string> JsonValue(int depth)
    {
        Gen<string> text = ArbMap.Default.GeneratorFor<string>().Select(s => s ?? "").Where(IsWellFormed);
        Gen<string> leaf = Gen.OneOf(
            Gen.Constant("null"),
            Gen.Elements("true", "false"),
            ArbMap.Default.GeneratorFor<long>().Select(l => l.ToString(CultureInfo.InvariantCulture)),
            Gen.Elements(0L, 255L, 256L, 65535L, 65536L, int.MaxValue, int.MinValue, -1L, (long)int.MaxValue + 1).Select(l => l.ToString(CultureInfo.InvariantCulture)),
            ArbMap.Default.GeneratorFor<ulong>().Select(u => (new BigInteger(u) * u * u * (u % 2 == 0 ? 1 : -1)).ToString(CultureInfo.InvariantCulture)),
            ArbMap.Default.GeneratorFor<NormalFloat>().Select(f => Encoding.ASCII.GetString(RestrictedUnpickler.FloatText(f.Get))),
            Gen.Elements(1.0, -0.5, 1e20, 0.1, 1e-7, -0.0).Select(d => Encoding.ASCII.GetString(RestrictedUnpickler.FloatText(d))),
            text.Select(s => JsonSerializer.Serialize(s, s_relaxed)));
        if (depth == 0)
        {
            return leaf;
        }

        Gen<string> inner = JsonValue(depth - 1);
        return Gen.Frequency(
            (4, leaf),
            (1, Gen.ListOf(inner).Select(items => "[" + string.Join(',', items) + "]")),
            (1, Gen.ListOf(Gen.Zip(text, inner)).Select(pairs =>
                "{" + string.Join(',', pairs.DistinctBy(p => p.Item1).Select(p => JsonSerializer.Serialize(p.Item1, s_relaxed) + ":" + p.Item2)) + "}")));
    }

    private static bool IsWellFormed(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(s[i]))
            {
                return false;
            }
        }

        return true;
    }

    [Fact]
    public void PickleThenUnpickle_RandomJsonValues_SameValue()
    {
        Check.One(s_config, Prop.ForAll(JsonValue(3).ToArbitrary(), json =>
        {
            byte[] pickle = PickleWriter.FromJson(Encoding.UTF8.GetBytes(json));

            string back = Encoding.UTF8.GetString(RestrictedUnpickler.ToJson(pickle));

            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse(back)), $"{json} came back as {back}");
            Assert.Equal(json, back);
        }));
    }

    [Fact]
    public async Task PythonPickles_EveryProtocol_ReadAsPythonsJson()
    {
        Assert.SkipUnless(Python.Available, "/usr/bin/python3 is missing");
        const string script = """
            import pickle, json, sys
            values = [None, True, False, 0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -2**31, 2**31, 2**63, -2**63 - 1, 2**64,
                      10**100, -(10**300), 1.5, -0.0, 1e300, 2.5e-300, 0.1, '', 'x', 'héllo wörld', '日本語', '\U0001F600', 'a' * 300,
                      'line\nbreak "quoted" \\ back', [], [1, [2, [3, []]]], (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), {}, {'a': 1},
                      {'k%d' % i: i for i in range(2000)}, list(range(2500)), {'nested': {'list': [1, 2.5, 'x', None, True], 't': (1, 'two')}},
                      {1: 'one', True: 't', None: 'n', 2.5: 'f'}, b'bytes', b'\xff\x00\x80', bytearray(b'ba'), set(), {1}, frozenset([2]),
                      {'exc_type': 'ValueError', 'exc_message': ('bad',), 'exc_module': 'builtins'}]
            shared = [1, 2]
            values.append([shared, shared, {'s': shared}])
            def plain(v):
                if isinstance(v, (bytes, bytearray)):
                    try:
                        return bytes(v).decode('utf-8')
                    except UnicodeDecodeError:
                        return bytes(v).decode('latin-1')
                if isinstance(v, (list, tuple, set, frozenset)):
                    return [plain(x) for x in v]
                if isinstance(v, dict):
                    return {k: plain(x) for k, x in v.items()}
                return v
            import pickletools
            for v in values:
                for proto in range(0, 6):
                    data = pickle.dumps(v, protocol=proto)
                    # Older protocols write bytes, bytearray and set as calls (_codecs.encode, builtins.set): refused.
                    calls = any(op.name in ('GLOBAL', 'STACK_GLOBAL') for op, _, _ in pickletools.genops(data))
                    print('refused' if calls else proto, data.hex(), json.dumps(plain(v), ensure_ascii=False))
            """;
        string output = await Python.RunAsync(script, ct: Ct);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 300, output);

        foreach (string line in lines)
        {
            string[] parts = line.Split(' ', 3);
            byte[] pickle = Convert.FromHexString(parts[1]);
            if (parts[0] == "refused")
            {
                Assert.Contains(Assert.Throws<UnsafePickleException>(() => RestrictedUnpickler.ToJson(pickle)).Opcode, (string[])["GLOBAL", "STACK_GLOBAL"]);
                continue;
            }

            string json = Encoding.UTF8.GetString(RestrictedUnpickler.ToJson(pickle));

            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(parts[2]), JsonNode.Parse(json)), $"protocol {parts[0]}: Python wrote {parts[2]}, read {json}");
        }
    }

    [Fact]
    public async Task WriterOutput_ManyValues_PythonLoadsTheSameValues()
    {
        Assert.SkipUnless(Python.Available, "/usr/bin/python3 is missing");
        List<string> values =
        [
            "null", "true", "false", "0", "-1", "255", "256", "65535", "65536", "2147483647", "-2147483648", "2147483648",
            "9223372036854775807", "-9223372036854775808", "18446744073709551616", "-1" + new string('0', 700), "1.5", "-0.0", "1e+300",
            "\"\"", "\"héllo 日本語 😀\"", JsonSerializer.Serialize(new string('x', 300)), "[]", "{}", "[1,[2,[3,[]]]]",
            """{"a":1,"b":[1,2.5,"x",null,true],"c":{"d":{}}}""", "[" + string.Join(',', Enumerable.Range(0, 3000)) + "]",
        ];
        values.AddRange(JsonValue(3).Sample(200, 8));
        string stdin = string.Join('\n', values.Select(v => Convert.ToHexString(PickleWriter.FromJson(Encoding.UTF8.GetBytes(v)))));
        const string script = """
            import pickle, json, sys
            for line in sys.stdin.read().split('\n'):
                print(json.dumps(pickle.loads(bytes.fromhex(line)), ensure_ascii=False))
            """;

        string[] read = (await Python.RunAsync(script, stdin, Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(values.Count, read.Length);
        for (int i = 0; i < values.Count; i++)
        {
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(values[i]), JsonNode.Parse(read[i])), $"wrote {values[i]}, Python read {read[i]}");
        }
    }

    [Fact]
    public async Task GroupPickles_BothWays_CeleryAndCeleriacSeeTheSameGroup()
    {
        Assert.SkipUnless(Python.Available, "/usr/bin/python3 is missing");
        byte[] ours = PickleWriter.WriteGroupResult("g-ours", ["a1", "a2", "a3"]);
        const string script = """
            import pickle, sys
            from celery import Celery
            from celery.result import GroupResult, AsyncResult
            app = Celery(broker='memory://', backend='db+sqlite:///:memory:')
            app.set_current()
            g = pickle.loads(bytes.fromhex(sys.stdin.read()))
            assert isinstance(g, GroupResult) and all(isinstance(r, AsyncResult) for r in g.results)
            print(g.id, ' '.join(r.id for r in g.results))
            parent = AsyncResult('p1', app=app)
            theirs = GroupResult('g-theirs', [AsyncResult('b1', app=app), AsyncResult('b2', app=app, parent=parent),
                                              GroupResult('g-inner', [AsyncResult('c1', app=app)], app=app)], app=app)
            print(pickle.dumps(theirs, protocol=pickle.HIGHEST_PROTOCOL).hex())
            print(pickle.dumps(theirs, protocol=2).hex())
            bound = app.GroupResult('g-theirs', [app.AsyncResult('b1'), app.AsyncResult('b2', parent=parent), app.GroupResult('g-inner', [app.AsyncResult('c1')])])
            print(pickle.dumps(bound, protocol=pickle.HIGHEST_PROTOCOL).hex())
            """;

        string[] lines = (await Python.RunAsync(script, Convert.ToHexString(ours), Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("g-ours a1 a2 a3", lines[0]);
        Assert.Equal(4, lines.Length);
        Assert.Contains("_unpickle_appattr", Encoding.Latin1.GetString(Convert.FromHexString(lines[3])), StringComparison.Ordinal);
        foreach (string theirs in lines[1..])
        {
            string tuples = Encoding.UTF8.GetString(RestrictedUnpickler.ReadGroupResult(Convert.FromHexString(theirs)));
            Assert.Equal("""[["g-theirs",null],[[["b1",null],null],[["b2",[["p1",null],null]],null],[["g-inner",null],[[["c1",null],null]]]]]""", tuples);
        }

        Assert.Equal("""[["g-ours",null],[[["a1",null],null],[["a2",null],null],[["a3",null],null]]]""", Encoding.UTF8.GetString(RestrictedUnpickler.ReadGroupResult(ours)));
        UnsafePickleException refused = Assert.Throws<UnsafePickleException>(() => RestrictedUnpickler.ToJson(ours));
        Assert.Equal("celery.result.GroupResult", refused.Name);

        // An app attribute other than the two result classes is code, even inside a group pickle.
        byte[] appSend = Encoding.Latin1.GetBytes("\u0080\u0004\u008c\u000fcelery.app.base\u008c\u0011_unpickle_appattr\u0093\u008c\u0004send)\u0086R.");
        UnsafePickleException send = Assert.Throws<UnsafePickleException>(() => RestrictedUnpickler.ReadGroupResult(appSend));
        Assert.Equal(("REDUCE", "celery.app.base._unpickle_appattr('send')"), (send.Opcode, send.Name));
    }

    [Fact]
    public async Task HostilePickles_FromPython_RefusedAndNothingRuns()
    {
        Assert.SkipUnless(Python.Available, "/usr/bin/python3 is missing");
        string marker = Path.Combine(Path.GetTempPath(), "pwned-" + Guid.NewGuid().ToString("N"));
        string control = marker + "-control";
        string script = $$"""
            import os, pickle, subprocess
            class Evil:
                def __init__(self, path): self.path = path
                def __reduce__(self): return (os.system, ('touch ' + self.path,))
            class Plain:
                def __init__(self): self.x = 1
            for proto in range(0, 6):
                print('reduce', pickle.dumps(Evil('{{marker}}'), protocol=proto).hex())
                print('reduce-in-dict', pickle.dumps({'result': [1, Evil('{{marker}}')]}, protocol=proto).hex())
                print('object', pickle.dumps(Plain(), protocol=proto).hex())
                print('eval', pickle.dumps({'x': eval}, protocol=proto).hex())
            pickle.loads(pickle.dumps(Evil('{{control}}')))
            """;
        string[] lines = (await Python.RunAsync(script, ct: Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        // The payloads are live: Python's own unpickler ran the control copy.
        Assert.True(File.Exists(control), "the control payload did not run in Python");
        File.Delete(control);
        Assert.Equal(24, lines.Length);
        foreach (string line in lines)
        {
            string[] parts = line.Split(' ');
            UnsafePickleException e = Assert.Throws<UnsafePickleException>(() => RestrictedUnpickler.ToJson(Convert.FromHexString(parts[1])));
            Assert.Contains(e.Opcode, (string[])["GLOBAL", "STACK_GLOBAL", "INST"]);
            Assert.Contains("would import and call code", e.Message, StringComparison.Ordinal);
            Assert.Throws<UnsafePickleException>(() => RestrictedUnpickler.ReadGroupResult(Convert.FromHexString(parts[1])));
        }

        Assert.False(File.Exists(marker));
    }

    public static TheoryData<string, string, string?> HandMadeHostile => new()
    {
        { "GLOBAL os.system", "cos\nsystem\n(S'touch /tmp/pwned-global'\ntR.", "os.system" },
        { "STACK_GLOBAL", "\u0080\u0004\u008c\u0005posix\u008c\u0006system\u0093\u008c\u0004true\u0085R.", "posix.system" },
        { "INST", "(S'touch /tmp/pwned-inst'\nios\nsystem\n.", "os.system" },
        { "OBJ", "(K\u0001o.", null },
        { "NEWOBJ", "\u0080\u0002K\u0001)\u0081.", null },
        { "NEWOBJ_EX", "\u0080\u0004K\u0001)}\u0092.", null },
        { "BUILD", "\u0080\u0002]}b.", null },
        { "REDUCE", "\u0080\u0002K\u0001)R.", null },
        { "STACK_GLOBAL app attribute", "\u0080\u0004\u008c\u000fcelery.app.base\u008c\u0011_unpickle_appattr\u0093\u008c\u0004send)\u0086R.", "celery.app.base._unpickle_appattr" },
        { "EXT1", "\u0080\u0002\u0082\u0001.", null },
        { "EXT2", "\u0080\u0002\u0083\u0001\u0000.", null },
        { "EXT4", "\u0080\u0002\u0084\u0001\u0000\u0000\u0000.", null },
        { "PERSID", "Pfoo\n.", null },
        { "BINPERSID", "\u0080\u0002K\u0001Q.", null },
        { "NEXT_BUFFER", "\u0080\u0005\u0097.", null },
        { "READONLY_BUFFER", "\u0080\u0005]\u0098.", null },
    };

    [Theory]
    [MemberData(nameof(HandMadeHostile))]
    public void HandMadeHostile_EachCodeOpcode_RefusedNamingIt(string opcode, string pickle, string? name)
    {
        byte[] bytes = Encoding.Latin1.GetBytes(pickle);

        UnsafePickleException e = Assert.Throws<UnsafePickleException>(() => RestrictedUnpickler.ToJson(bytes));

        Assert.Equal(opcode.Split(' ')[0], e.Opcode);
        Assert.Equal(name, e.Name);
        Assert.StartsWith("Refused pickle opcode " + e.Opcode, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_EveryPrefixOfARealPickle_ClearErrorNeverAValue()
    {
        byte[] full = PickleWriter.FromJson("""{"a":[1,2.5,"x",123456789012345678901234567890,{"b":null}],"c":"héllo"}"""u8);
        Assert.NotEmpty(RestrictedUnpickler.ToJson(full));

        for (int length = 0; length < full.Length; length++)
        {
            UnpicklingException e = Assert.Throws<UnpicklingException>(() => RestrictedUnpickler.ToJson(full.AsSpan(0, length)));
            Assert.Contains("pickle", e.Message, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public void DeeplyNested_HundredThousandLevels_RefusedQuickly()
    {
        const int depth = 100_000;
        byte[] lists = [0x80, 4, .. Enumerable.Repeat((byte)']', depth), .. Enumerable.Repeat((byte)'a', depth - 1), (byte)'.'];
        byte[] marks = [0x80, 4, .. Enumerable.Repeat((byte)'(', depth), (byte)'.'];
        byte[] tuples = [0x80, 4, (byte)')', .. Enumerable.Repeat((byte)0x85, depth), (byte)'.'];

        UnpicklingException deep = Assert.Throws<UnpicklingException>(() => RestrictedUnpickler.ToJson(lists));
        Assert.Contains("deeper than 64", deep.Message, StringComparison.Ordinal);
        Assert.Contains("deeper than 64", Assert.Throws<UnpicklingException>(() => RestrictedUnpickler.ToJson(tuples)).Message, StringComparison.Ordinal);
        Assert.Contains("open MARK", Assert.Throws<UnpicklingException>(() => RestrictedUnpickler.ToJson(marks)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MemoBomb_AndSelfReference_RefusedQuickly()
    {
        // Each level is a list of ten references to the level below: 10^30 values if expanded.
        var bomb = new List<byte> { 0x80, 4, (byte)'K', 1, 0x94 };
        for (int level = 0; level < 30; level++)
        {
            bomb.AddRange([(byte)']', (byte)'(']);
            for (int i = 0; i < 10; i++)
            {
                bomb.AddRange([(byte)'j', .. BitConverter.GetBytes((uint)level)]);
            }

            bomb.AddRange([(byte)'e', 0x94]);
        }

        bomb.Add((byte)'.');
        byte[] cycle = [0x80, 4, (byte)']', 0x94, (byte)'h', 0, (byte)'a', (byte)'.'];

        Assert.Contains("more than", Assert.Throws<UnpicklingException>(() => RestrictedUnpickler.ToJson(bomb.ToArray())).Message, StringComparison.Ordinal);
        Assert.Contains("contains itself", Assert.Throws<UnpicklingException>(() => RestrictedUnpickler.ToJson(cycle)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NotJson_NaNAndTupleKeys_ClearErrors()
    {
        byte[] nan = [0x80, 4, (byte)'G', 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, (byte)'.'];
        byte[] tupleKey = [0x80, 4, (byte)'}', (byte)')', (byte)'K', 1, (byte)'s', (byte)'.'];

        Assert.Contains("JSON cannot", Assert.Throws<UnpicklingException>(() => RestrictedUnpickler.ToJson(nan)).Message, StringComparison.Ordinal);
        Assert.Contains("dict key of type tuple", Assert.Throws<UnpicklingException>(() => RestrictedUnpickler.ToJson(tupleKey)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => PickleWriter.FromJson("1e999"u8));
    }
}
