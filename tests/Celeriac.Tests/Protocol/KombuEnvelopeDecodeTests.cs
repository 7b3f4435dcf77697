using System.Text;
using Celeriac.Protocol;
using Celeriac.Transport;

namespace Celeriac.Tests.Protocol;

/// <summary>kombu's envelope as read off a key-value broker: escapes, odd property types, bad bodies, shared names.</summary>
public sealed class KombuEnvelopeDecodeTests
{
    private const string Body = "W1s0LCA0XSwge30sIHt9XQ=="; // [[4, 4], {}, {}]

    private static TransportMessage Decode(string json)
    {
        Assert.True(KombuEnvelope.TryDecode(Encoding.UTF8.GetBytes(json), out TransportMessage? message, out string? error), error);
        return message!;
    }

    private static string Envelope(string body = $"\"{Body}\"", string properties = """{"body_encoding": "base64", "delivery_tag": "t1", "delivery_info": {"exchange": "", "routing_key": "celery"}}""") =>
        $$"""{"body": {{body}}, "content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py", "task": "tasks.add", "id": "a1"}, "properties": {{properties}}}""";

    [Fact]
    public void TryDecode_TwoMessages_ShareTheInstancesOfCommonNames()
    {
        TransportMessage a = Decode(Envelope());
        TransportMessage b = Decode(Envelope());

        Assert.Same(a.Headers.Keys.Single(k => k == "task"), b.Headers.Keys.Single(k => k == "task"));
        Assert.Same(a.Headers["lang"], b.Headers["lang"]);
        Assert.Equal(("tasks.add", "a1", "application/json", "utf-8"), (a.Headers["task"], a.Headers["id"], a.ContentType, a.ContentEncoding));
    }

    [Fact]
    public void TryDecode_EscapedNamesAndBody_ReadAsTheirUnescapedText()
    {
        // "b\u006fdy" is "body"; "\/" is "/" (a JSON writer may escape it, and base64 has slashes).
        string json = """{"b\u006fdy": "W1s\/Pz8\/XSwge30sIHt9XQ==", "he\u0061ders": {"t\u0061sk": "tasks.\u0061dd"}, "properties": {"body_encoding": "base\u0036\u0034", "delivery_tag": "t\u0031"}}""";

        TransportMessage m = Decode(json);

        Assert.Equal(Convert.FromBase64String("W1s/Pz8/XSwge30sIHt9XQ=="), m.Body.ToArray());
        Assert.Equal("tasks.add", m.Headers["task"]);
        Assert.Equal("t1", m.DeliveryTag);
    }

    [Fact]
    public void TryDecode_Base64WithLineBreaks_DecodesAsPythonsBase64Does()
    {
        TransportMessage m = Decode(Envelope(body: "\"W1s0LCA0XSwg\\ne30sIHt9XQ==\\n\""));

        Assert.Equal("[[4, 4], {}, {}]", Encoding.UTF8.GetString(m.Body.Span));
    }

    [Fact]
    public void TryDecode_BodyNotBase64Encoded_IsTheTextsUtf8()
    {
        TransportMessage m = Decode(Envelope(body: "\"[[1], {}, {\\\"chord\\\": null}] \u00e9\"", properties: """{"body_encoding": "utf-8"}"""));

        Assert.Equal("[[1], {}, {\"chord\": null}] é", Encoding.UTF8.GetString(m.Body.Span));
    }

    [Theory]
    [InlineData("\"not base64!\"", "body is not valid base64")]
    [InlineData("42", "envelope has no body")]
    public void TryDecode_BadBody_SaysWhyAndDoesNotThrow(string body, string reason)
    {
        Assert.False(KombuEnvelope.TryDecode(Encoding.UTF8.GetBytes(Envelope(body: body)), out TransportMessage? message, out string? error));
        Assert.Null(message);
        Assert.Equal(reason, error);
    }

    [Fact]
    public void TryDecode_BodyOfInvalidUtf8_SaysWhyAndDoesNotThrow()
    {
        byte[] json = Encoding.UTF8.GetBytes(Envelope(body: "\"AB\"", properties: """{"body_encoding": "utf-8"}"""));
        int at = Array.IndexOf(json, (byte)'A');
        json[at] = 0xC3; // A lead byte whose next byte is not a continuation.

        Assert.False(KombuEnvelope.TryDecode(json, out _, out string? error));
        Assert.StartsWith("envelope is not valid JSON", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryDecode_PropertiesOfOtherTypes_ReadAsFromADictionaryOfThem()
    {
        // Numbers where strings go, strings where numbers go, a repeated name (the last wins), a priority out of range.
        TransportMessage m = Decode(Envelope(properties: """
            {"body_encoding": "base64", "delivery_tag": 17, "correlation_id": 5, "reply_to": "r1", "reply_to": "r2",
             "delivery_mode": "persistent", "priority": 900, "expiration": "60000", "delivery_info": {"exchange": 1, "routing_key": "q"},
             "extra": {"nested": [1, 2]}}
            """));

        Assert.Equal(
            ("17", (string?)null, "r2", 2, (int?)255, "60000", "", "q"),
            (m.DeliveryTag, m.CorrelationId, m.ReplyTo, m.DeliveryMode, m.Priority, m.Expiration, m.Exchange, m.RoutingKey));
    }

    [Theory]
    [InlineData("""{"body": "", "properties": 3}""", "envelope is not valid JSON: properties is not an object")]
    [InlineData("""{"body": "", "headers": [1], "properties": {}}""", "envelope is not valid JSON: headers is not an object")]
    [InlineData("""{"body": ""}""", "envelope has no properties")]
    public void TryDecode_BadShape_SaysWhy(string json, string reason)
    {
        Assert.False(KombuEnvelope.TryDecode(Encoding.UTF8.GetBytes(json), out _, out string? error));
        Assert.Equal(reason, error);
    }
}
