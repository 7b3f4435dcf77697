using System.Text.Json;
using System.Text.RegularExpressions;
using Celeriac.Protocol;
using Celeriac.Tests.Support;
using Celeriac.Transport;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Protocol;

/// <summary>
/// What Celeriac writes for the same call as a captured Celery message carries the same fields, of the
/// same JSON kinds; result documents have Celery's keys in Celery's order.
/// </summary>
public sealed partial class WireCompatibilityTests
{
    public static TheoryData<string> Scenarios =>
    [
        "redis-msg-plain-args", "redis-msg-kwargs", "redis-msg-countdown-eta", "redis-msg-eta-datetime", "redis-msg-expires",
        "redis-msg-priority", "redis-msg-shadow-name", "redis-msg-time-limits", "redis-msg-json-types",
    ];

    [Theory]
    [MemberData(nameof(Scenarios))]
    public async Task BuildMessage_SameCallAsCelery_SameEnvelopeShape(string fixture)
    {
        using JsonDocument sample = WireSamples.Load(fixture + ".json");
        JsonElement[] messages = [.. sample.RootElement.GetProperty("messages").EnumerateArray()];
        JsonElement captured = fixture == "redis-msg-priority" ? messages[1] : messages[0];
        JsonElement capturedEnvelope = captured.GetProperty("envelope");
        JsonElement capturedHeaders = capturedEnvelope.GetProperty("headers");
        JsonElement capturedBody = captured.GetProperty("body");

        // The clock stands where Celery's stood, so that countdown and expiry give the same instants.
        DateTimeOffset now = DateTimeOffset.Parse("2026-11-24T01:13:15.236910+00:00", System.Globalization.CultureInfo.InvariantCulture);
        if (capturedHeaders.GetProperty("eta").GetString() is { } capturedEta && fixture == "redis-msg-countdown-eta")
        {
            now = DateTimeOffset.Parse(capturedEta, System.Globalization.CultureInfo.InvariantCulture) - TimeSpan.FromSeconds(60);
        }
        else if (capturedHeaders.GetProperty("expires").GetString() is { } capturedExpires)
        {
            now = DateTimeOffset.Parse(capturedExpires, System.Globalization.CultureInfo.InvariantCulture) - TimeSpan.FromSeconds(3600);
        }

        await using CeleriacApp app = RunningWorker.NewApp(o => o.TimeProvider = new FakeTimeProvider(now));
        (IReadOnlyList<object?>? args, IReadOnlyDictionary<string, object?>? kwargs, ApplyOptions options) = CallOf(fixture, capturedBody);

        TransportMessage message = app.BuildMessage("wireapp.add", args, kwargs, options, out string queue);
        JsonElement envelope = JsonAssert.Parse(KombuEnvelope.Encode(message, "", queue));

        Assert.Equal("celery", queue);
        Assert.Equal(JsonAssert.Keys(capturedEnvelope).Order(StringComparer.Ordinal), JsonAssert.Keys(envelope).Order(StringComparer.Ordinal));
        Assert.Equal("application/json", envelope.GetProperty("content-type").GetString());
        Assert.Equal("utf-8", envelope.GetProperty("content-encoding").GetString());

        // Headers: the same keys, each of the same kind (str/int/None/list/bool) as Celery's.
        JsonElement headers = envelope.GetProperty("headers");
        Assert.Equal(JsonAssert.Shape(capturedHeaders), JsonAssert.Shape(headers));
        Assert.Equal("dotnet", headers.GetProperty("lang").GetString());
        Assert.Equal(headers.GetProperty("id").GetString(), headers.GetProperty("root_id").GetString());
        Assert.Matches(OriginPattern(), headers.GetProperty("origin").GetString());
        foreach (string time in new[] { "eta", "expires" })
        {
            if (headers.GetProperty(time).GetString() is { } text)
            {
                Assert.Matches(IsoPattern(), text);
                Assert.Equal(
                    DateTimeOffset.Parse(capturedHeaders.GetProperty(time).GetString()!, System.Globalization.CultureInfo.InvariantCulture),
                    DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        foreach (string same in new[] { "shadow", "timelimit", "retries", "group", "group_index", "parent_id", "ignore_result", "kwargsrepr" })
        {
            JsonAssert.Equal(capturedHeaders.GetProperty(same), headers.GetProperty(same), same);
        }

        if (fixture != "redis-msg-json-types")
        {
            Assert.Equal(capturedHeaders.GetProperty("argsrepr").GetString(), headers.GetProperty("argsrepr").GetString());
        }

        // Properties: the same keys and kinds; delivery_info names the exchange and routing key.
        JsonElement properties = envelope.GetProperty("properties");
        JsonElement capturedProperties = capturedEnvelope.GetProperty("properties");
        Assert.Equal(JsonAssert.Shape(capturedProperties), JsonAssert.Shape(properties));
        Assert.Equal(JsonAssert.Shape(capturedProperties.GetProperty("delivery_info")), JsonAssert.Shape(properties.GetProperty("delivery_info")));
        Assert.Equal("", properties.GetProperty("delivery_info").GetProperty("exchange").GetString());
        Assert.Equal("celery", properties.GetProperty("delivery_info").GetProperty("routing_key").GetString());
        Assert.Equal(headers.GetProperty("id").GetString(), properties.GetProperty("correlation_id").GetString());
        Assert.Equal(app.ReplyTo, properties.GetProperty("reply_to").GetString());
        Assert.Equal(2, properties.GetProperty("delivery_mode").GetInt32());
        Assert.Equal("base64", properties.GetProperty("body_encoding").GetString());
        Assert.Equal(capturedProperties.GetProperty("priority").GetInt32(), properties.GetProperty("priority").GetInt32());
        if (capturedProperties.TryGetProperty("expiration", out JsonElement expiration))
        {
            Assert.Equal(expiration.GetString(), properties.GetProperty("expiration").GetString());
        }

        // Body: [args, kwargs, {callbacks, errbacks, chain, chord}], the same values as Celery's.
        JsonElement body = JsonAssert.Parse(Convert.FromBase64String(envelope.GetProperty("body").GetString()!));
        JsonAssert.Equal(capturedBody, body, "body");
        Assert.Equal(["callbacks", "errbacks", "chain", "chord"], JsonAssert.Keys(body[2]));
    }

    private static (IReadOnlyList<object?>? Args, IReadOnlyDictionary<string, object?>? Kwargs, ApplyOptions Options) CallOf(string fixture, JsonElement capturedBody) => fixture switch
    {
        "redis-msg-plain-args" => ([2, 3], null, new ApplyOptions()),
        "redis-msg-kwargs" => (null, new Dictionary<string, object?> { ["x"] = 2, ["y"] = 3 }, new ApplyOptions()),
        "redis-msg-countdown-eta" => ([2, 3], null, new ApplyOptions { Countdown = TimeSpan.FromSeconds(60) }),
        "redis-msg-eta-datetime" => ([2, 3], null, new ApplyOptions { Eta = new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero) }),
        "redis-msg-expires" => ([2, 3], null, new ApplyOptions { ExpiresIn = TimeSpan.FromSeconds(3600) }),
        "redis-msg-priority" => ([5, 5], null, new ApplyOptions { Priority = 5 }),
        "redis-msg-shadow-name" => ([2, 3], null, new ApplyOptions { Shadow = "custom.display.name" }),
        "redis-msg-time-limits" => ([2, 3], null, new ApplyOptions { TimeLimit = TimeSpan.FromSeconds(30), SoftTimeLimit = TimeSpan.FromSeconds(20) }),
        "redis-msg-json-types" => (
            [
                new List<object?> { 1, 2.5, null, true, "h\u00e9llo \u2713", new Dictionary<string, object?> { ["k"] = new List<object?> { 1 } } },
                new Dictionary<string, object?> { ["nested"] = new Dictionary<string, object?> { ["a"] = null, ["b"] = false } },
            ],
            null,
            new ApplyOptions()),
        _ => throw new ArgumentOutOfRangeException(nameof(fixture), fixture, null),
    };

    [Fact]
    public void BuildMessage_JsonTypesAsJsonElements_SameBodyAsCelery()
    {
        using JsonDocument sample = WireSamples.Load("redis-msg-json-types.json");
        JsonElement capturedBody = sample.RootElement.GetProperty("messages")[0].GetProperty("body");
        using var app = new AppHolder();
        object?[] args = [.. capturedBody[0].EnumerateArray().Select(e => (object?)e)];

        TransportMessage message = app.App.BuildMessage("wireapp.add", args, null, null, out _);

        JsonAssert.Equal(capturedBody, JsonAssert.Parse(message.Body.Span));
    }

    [Theory]
    [InlineData(new object[] { 2, 3 }, "(2, 3)")]
    [InlineData(new object[] { 7 }, "(7,)")]
    [InlineData(new object[] { }, "()")]
    [InlineData(new object[] { "it's", true, 1.5 }, "(\"it's\", True, 1.5)")]
    public void BuildMessage_Args_ArgsreprLooksLikePythonRepr(object[] args, string expected)
    {
        using var app = new AppHolder();

        TransportMessage message = app.App.BuildMessage("t", args, null, null, out _);

        Assert.Equal(expected, message.Headers["argsrepr"]);
        Assert.Equal("{}", message.Headers["kwargsrepr"]);
    }

    [Fact]
    public void BuildMessage_KwargsWithNone_KwargsreprLooksLikePythonRepr()
    {
        using var app = new AppHolder();

        TransportMessage message = app.App.BuildMessage("t", null, new Dictionary<string, object?> { ["x"] = 2, ["y"] = null, ["z"] = "s" }, null, out _);

        Assert.Equal("()", message.Headers["argsrepr"]);
        Assert.Equal("{'x': 2, 'y': None, 'z': 's'}", message.Headers["kwargsrepr"]);
    }

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")]
    private static partial Regex IsoPattern();

    [GeneratedRegex(@"^gen\d+@.+$")]
    private static partial Regex OriginPattern();

    /// <summary>An app that is never started, for building messages.</summary>
    private sealed class AppHolder : IDisposable
    {
        public CeleriacApp App { get; } = RunningWorker.NewApp();

        public void Dispose() => App.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
