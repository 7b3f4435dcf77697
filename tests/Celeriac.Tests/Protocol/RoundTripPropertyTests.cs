using System.Buffers;
using System.Numerics;
using System.Text.Json;
using Celeriac.Protocol;
using Celeriac.Tests.Support;
using Celeriac.Transport;
using FsCheck;
using FsCheck.Fluent;

namespace Celeriac.Tests.Protocol;

/// <summary>FsCheck round trips of the protocol codecs: what is written is read back unchanged.</summary>
public sealed class RoundTripPropertyTests
{
    private static readonly Config s_config = Config.QuickThrowOnFailure.WithMaxTest(500);

    /// <summary>Plain values of every kind JsonValues carries, nested.</summary>
    private static Gen<object?> PlainValue(int depth)
    {
        Gen<object?> leaf = Gen.OneOf(
            Gen.Constant<object?>(null),
            ArbMap.Default.GeneratorFor<bool>().Select(b => (object?)b),
            ArbMap.Default.GeneratorFor<long>().Select(l => (object?)l),
            ArbMap.Default.GeneratorFor<NormalFloat>().Select(f => (object?)f.Get),
            Gen.Elements<object?>(1.0, -0.5, 2.0, 1e20, 0.1),
            ArbMap.Default.GeneratorFor<string>().Select(s => (object?)(s ?? "")),
            ArbMap.Default.GeneratorFor<ulong>().Select(u => (object?)(new BigInteger(u) * 1_000_000_007 + long.MaxValue)));
        if (depth == 0)
        {
            return leaf;
        }

        Gen<object?> inner = PlainValue(depth - 1);
        return Gen.Frequency(
            (5, leaf),
            (1, Gen.ListOf(inner).Select(l => (object?)l.ToList())),
            (1, Gen.ListOf(Gen.Zip(ArbMap.Default.GeneratorFor<string>().Select(s => s ?? ""), inner)).Select(pairs =>
            {
                var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach ((string k, object? v) in pairs)
                {
                    d[k] = v;
                }

                return (object?)d;
            })));
    }

    [Fact]
    public void JsonValues_WriteThenParse_SameValueAndType()
    {
        Check.One(s_config, Prop.ForAll(PlainValue(3).ToArbitrary(), value =>
        {
            object? back = JsonValues.Parse(Write(value));
            AssertSame(value, back);
        }));
    }

    [Fact]
    public void JsonValues_Write_JsonNodesAndElementArrays_AsTheJsonTheyHold()
    {
        using JsonDocument doc = JsonDocument.Parse("""[1, "two", {"three": [3.0]}]""");
        JsonElement[] elements = [.. doc.RootElement.EnumerateArray()];
        var node = new System.Text.Json.Nodes.JsonArray(1, "two", new System.Text.Json.Nodes.JsonObject { ["three"] = null });

        // Written without the serializer (a NativeAOT app has no metadata for these types; the canvas built-ins return them).
        Assert.Equal("""[1,"two",{"three":[3.0]}]""", System.Text.Encoding.UTF8.GetString(Write(elements)));
        Assert.Equal("""[1,"two",{"three":null}]""", System.Text.Encoding.UTF8.GetString(Write(node)));
        Assert.Equal("[]", System.Text.Encoding.UTF8.GetString(Write(Array.Empty<JsonElement>())));
    }

    [Fact]
    public void TaskHeaders_ToDictionaryThenTryParse_SameHeaders()
    {
        Gen<DateTimeOffset?> time = Gen.OneOf(
            Gen.Constant<DateTimeOffset?>(null),
            Gen.Choose(0, int.MaxValue).Select(s => (DateTimeOffset?)new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero).AddSeconds(s).AddTicks(s % 1_000_000 * 10)));
        Gen<string?> text = Gen.OneOf(Gen.Constant<string?>(null), ArbMap.Default.GeneratorFor<NonEmptyString>().Select(s => (string?)s.Get));
        Gen<double?> limit = Gen.OneOf(Gen.Constant<double?>(null), Gen.Choose(0, 100_000).Select(n => (double?)(n / 4.0)));
        Gen<TaskHeaders> headers =
            from task in ArbMap.Default.GeneratorFor<NonEmptyString>()
            from id in ArbMap.Default.GeneratorFor<Guid>()
            from shadow in text
            from eta in time
            from expires in time
            from groupId in text
            from groupIndex in Gen.OneOf(Gen.Constant<long?>(null), Gen.Choose(0, 1000).Select(i => (long?)i))
            from retries in Gen.Choose(0, 1000)
            from hard in limit
            from soft in limit
            from parent in text
            from ignore in ArbMap.Default.GeneratorFor<bool>()
            select new TaskHeaders
            {
                Task = task.Get, Id = id.ToString(), Shadow = shadow, Eta = eta, Expires = expires, Group = groupId, GroupIndex = groupIndex,
                Retries = retries, HardTimeLimit = hard, SoftTimeLimit = soft, RootId = id.ToString(), ParentId = parent, ArgsRepr = "()",
                KwargsRepr = "{}", Origin = "gen1@host", IgnoreResult = ignore, Lang = "py",
            };

        Check.One(s_config, Prop.ForAll(headers.ToArbitrary(), h =>
        {
            // Through JSON, as on the wire.
            var plain = (Dictionary<string, object?>)JsonValues.Parse(Write(h.ToDictionary()))!;
            TaskHeaders? back = TaskHeaders.TryParse(plain, out string? id, out string? error);

            Assert.True(back is not null, error);
            Assert.Equal(h.Id, id);
            Assert.Equal(
                (h.Task, h.Id, h.Shadow, Micro(h.Eta), Micro(h.Expires), h.Group, h.GroupIndex, h.Retries, h.HardTimeLimit, h.SoftTimeLimit, h.RootId, h.ParentId, h.IgnoreResult, h.Lang),
                (back.Task, back.Id, back.Shadow, back.Eta, back.Expires, back.Group, back.GroupIndex, back.Retries, back.HardTimeLimit, back.SoftTimeLimit, back.RootId, back.ParentId, back.IgnoreResult, back.Lang));
        }));
    }

    [Fact]
    public void KombuEnvelope_EncodeThenDecode_SameMessage()
    {
        Gen<TransportMessage> messages =
            from body in ArbMap.Default.GeneratorFor<byte[]>()
            from headers in Gen.ListOf(Gen.Zip(ArbMap.Default.GeneratorFor<string>().Select(s => s ?? ""), PlainValue(2)))
            from correlation in Gen.OneOf(Gen.Constant<string?>(null), ArbMap.Default.GeneratorFor<Guid>().Select(g => (string?)g.ToString()))
            from replyTo in Gen.OneOf(Gen.Constant<string?>(null), ArbMap.Default.GeneratorFor<NonEmptyString>().Select(s => (string?)s.Get))
            from mode in Gen.Elements(1, 2)
            from priority in Gen.Choose(0, 255)
            from tag in ArbMap.Default.GeneratorFor<Guid>()
            from expiration in Gen.Elements<string?>(null, "0", "3600000")
            select new TransportMessage
            {
                Body = body,
                Headers = headers.GroupBy(p => p.Item1).ToDictionary(g => g.Key, g => (object?)g.First().Item2, StringComparer.Ordinal)!,
                CorrelationId = correlation,
                ReplyTo = replyTo,
                DeliveryMode = mode,
                Priority = priority,
                DeliveryTag = tag.ToString(),
                Expiration = expiration,
            };
        Gen<(TransportMessage, string, string)> cases =
            from m in messages
            from exchange in Gen.Elements("", "celery", "celeryev")
            from key in ArbMap.Default.GeneratorFor<string>().Select(s => s ?? "")
            select (m, exchange, key);

        Check.One(s_config, Prop.ForAll(cases.ToArbitrary(), c =>
        {
            (TransportMessage m, string exchange, string key) = c;
            Assert.True(KombuEnvelope.TryDecode(KombuEnvelope.Encode(m, exchange, key), out TransportMessage? back, out string? error), error);

            Assert.Equal(m.Body.ToArray(), back!.Body.ToArray());
            Assert.Equal((m.ContentType, m.ContentEncoding, m.CorrelationId, m.ReplyTo, m.DeliveryMode, m.Priority, m.DeliveryTag, m.Expiration, exchange, key),
                (back.ContentType, back.ContentEncoding, back.CorrelationId, back.ReplyTo, back.DeliveryMode, back.Priority, back.DeliveryTag, back.Expiration, back.Exchange, back.RoutingKey));
            AssertSame(new Dictionary<string, object?>(m.Headers, StringComparer.Ordinal), new Dictionary<string, object?>(back.Headers, StringComparer.Ordinal));
        }));
    }

    private static DateTimeOffset? Micro(DateTimeOffset? t) => t is { } v ? new DateTimeOffset(v.Ticks - (v.Ticks % 10), TimeSpan.Zero) : null;

    private static byte[] Write(object? value)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = CeleryJson.Options.Encoder }))
        {
            JsonValues.Write(w, value);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Same value and same CLR type (long stays long, double stays double, big integers stay big).</summary>
    private static void AssertSame(object? expected, object? actual)
    {
        switch (expected)
        {
            case null:
                Assert.Null(actual);
                break;
            case BigInteger big when big >= long.MinValue && big <= long.MaxValue:
                Assert.Equal((long)big, Assert.IsType<long>(actual));
                break;
            case List<object?> list:
                var actualList = Assert.IsType<List<object?>>(actual);
                Assert.Equal(list.Count, actualList.Count);
                for (int i = 0; i < list.Count; i++)
                {
                    AssertSame(list[i], actualList[i]);
                }

                break;
            case Dictionary<string, object?> dict:
                var actualDict = Assert.IsType<Dictionary<string, object?>>(actual);
                Assert.Equal(dict.Keys.Order(StringComparer.Ordinal), actualDict.Keys.Order(StringComparer.Ordinal));
                foreach ((string k, object? v) in dict)
                {
                    AssertSame(v, actualDict[k]);
                }

                break;
            default:
                Assert.Equal(expected.GetType(), actual?.GetType());
                Assert.Equal(expected, actual);
                break;
        }
    }
}
