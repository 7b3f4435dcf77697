using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Celeriac.Protocol;
using Celeriac.Tests.Support;
using Celeriac.Transport;

namespace Celeriac.Tests.Canvas;

/// <summary>
/// The canvas on the wire, against Celery 5.2.6's captured messages: the same chain, group, chord and callbacks built
/// in .NET send the same bodies (signature dicts in Celery's shape, the chain last step first, the chord's body in each
/// member's embed) with the same group headers; and a Celeriac worker given Celery's first message sends the same next
/// message as Celery's worker did (the result put first in the arguments, parent and root set, the chain one shorter).
/// Ids differ by nature and are compared as placeholders.
/// </summary>
public sealed partial class CanvasWireTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [GeneratedRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")]
    private static partial Regex Uuid();

    private static (CeleriacApp App, Func<RecordingTransport> Transport) NewApp()
    {
        RecordingTransport? transport = null;
        // No worker events: the tests read every publish in order, and a heartbeat would be one of them.
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://" + Guid.NewGuid().ToString("N"), DefaultQueue = "celery", Concurrency = 2, WithoutHeartbeat = true });
        app.Providers.AddTransport("memory", o => transport = new RecordingTransport(new MemoryTransport(o.Url)));
        _ = app.Transport;
        return (app, () => transport!);
    }

    private static JsonElement Normalized(string json) => JsonAssert.Parse(Uuid().Replace(json, "<id>"));

    private static JsonElement BodyOf(TransportMessage m) => Normalized(Encoding.UTF8.GetString(m.Body.Span));

    private static JsonElement[] CeleryMessages(string fixture)
    {
        using JsonDocument doc = WireSamples.Load(fixture + ".json");
        return [.. doc.RootElement.GetProperty("messages").EnumerateArray().Select(m => (m.TryGetProperty("decoded", out JsonElement d) ? d[0] : m).Clone())];
    }

    private static JsonElement CeleryBody(JsonElement message) => Normalized(message.GetProperty("body_raw").GetString()!);

    private static string? Header(TransportMessage m, string name) => m.Headers.TryGetValue(name, out object? v) ? v?.ToString() : null;

    [Fact]
    public async Task Chain_SameAsCelerys_FirstMessageCarriesTheRestLastStepFirst()
    {
        (CeleriacApp app, Func<RecordingTransport> transport) = NewApp();
        await using CeleriacApp scope = app;
        CeleriacTask add = app.Signature("wireapp.add");

        await (add.S(1, 2) | add.S(10) | add.S(100)).ApplyAsync(ct: Ct);

        TransportMessage ours = Assert.Single(transport().Published).Message;
        JsonAssert.Equal(CeleryBody(CeleryMessages("redis-msg-chain")[0]), BodyOf(ours), "body");
        Assert.Equal(Header(ours, "id"), Header(ours, "root_id"));
        Assert.Null(Header(ours, "parent_id"));
    }

    [Fact]
    public async Task Group_SameAsCelerys_MembersNameTheGroup()
    {
        (CeleriacApp app, Func<RecordingTransport> transport) = NewApp();
        await using CeleriacApp scope = app;
        CeleriacTask add = app.Signature("wireapp.add");

        GroupResult result = await global::Celeriac.Canvas.Group(add.S(1, 1), add.S(2, 2)).ApplyAsync(ct: Ct);

        JsonElement[] celery = CeleryMessages("redis-msg-group");
        TransportMessage[] ours = [.. transport().Published.Select(p => p.Message)];
        Assert.Equal(celery.Length, ours.Length);
        for (int i = 0; i < ours.Length; i++)
        {
            JsonAssert.Equal(CeleryBody(celery[i]), BodyOf(ours[i]), $"message {i} body");
            Assert.Equal(result.Id, Header(ours[i], "group"));
            Assert.Equal(result.Results[i].Id, Header(ours[i], "id"));
        }
    }

    [Fact]
    public async Task Chord_SameAsCelerys_EveryMemberCarriesTheBodyAndItsIndex()
    {
        (CeleriacApp app, Func<RecordingTransport> transport) = NewApp();
        await using CeleriacApp scope = app;
        CeleriacTask add = app.Signature("wireapp.add");

        AsyncResult body = await global::Celeriac.Canvas.Chord([add.S(1, 1), add.S(2, 2)], app.Signature("wireapp.tsum").S()).ApplyAsync(ct: Ct);

        JsonElement[] celery = CeleryMessages("redis-msg-chord");
        TransportMessage[] ours = [.. transport().Published.Select(p => p.Message)];
        Assert.Equal(celery.Length, ours.Length);
        for (int i = 0; i < ours.Length; i++)
        {
            JsonAssert.Equal(CeleryBody(celery[i]), BodyOf(ours[i]), $"member {i} body");
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), Header(ours[i], "group_index"));
            Assert.Equal(body.Parent!.Id, Header(ours[i], "group"));
        }

        using JsonDocument first = JsonDocument.Parse(ours[0].Body);
        Assert.Equal(body.Id, first.RootElement[2].GetProperty("chord").GetProperty("options").GetProperty("task_id").GetString());
    }

    [Fact]
    public async Task Link_SameAsCelerys_CallbacksAndErrbacksInTheEmbed()
    {
        (CeleriacApp app, Func<RecordingTransport> transport) = NewApp();
        await using CeleriacApp scope = app;
        Signature call = app.Signature("wireapp.add").S(2, 3);
        call.Link(app.Signature("wireapp.add").S(10));
        call.LinkError(app.Signature("wireapp.on_error_old").S());
        call.LinkError(app.Signature("wireapp.on_error_new").S());

        await call.ApplyAsync(ct: Ct);

        JsonAssert.Equal(CeleryBody(CeleryMessages("redis-msg-link-callbacks")[0]), BodyOf(Assert.Single(transport().Published).Message), "body");
    }

    [Fact]
    public async Task ChainFromWorker_GivenCelerysFirstMessage_SendsCelerysSecond()
    {
        JsonElement[] celery = CeleryMessages("redis-msg-chain-from-worker");
        (CeleriacApp app, Func<RecordingTransport> transport) = NewApp();
        await using CeleriacApp scope = app;
        app.Task("wireapp.add", (long x, long y) => x + y);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        await app.Transport.PublishAsync("", "celery", [Decode(celery[0])], Ct);

        Assert.True(await Poll.UntilAsync(() => transport().Published.Count >= 3, TimeSpan.FromSeconds(15)), $"{transport().Published.Count} published");
        TransportMessage second = transport().Published.ElementAt(1).Message;
        JsonAssert.Equal(CeleryBody(celery[1]), BodyOf(second), "second step body");
        string firstId = celery[0].GetProperty("envelope").GetProperty("headers").GetProperty("id").GetString()!;
        Assert.Equal(firstId, Header(second, "parent_id"));
        Assert.Equal(firstId, Header(second, "root_id"));
        TransportMessage third = transport().Published.ElementAt(2).Message;
        JsonAssert.Equal(CeleryBody(celery[2]), BodyOf(third), "third step body");
        Assert.Equal(Header(second, "id"), Header(third, "parent_id"));
        Assert.Equal(firstId, Header(third, "root_id"));
    }

    [Fact]
    public async Task LinkFromWorker_GivenCelerysMessages_SendsTheCallbackAndTheOldStyleErrbackAsCelerysWorkerDid()
    {
        JsonElement[] celery = CeleryMessages("redis-msg-link-from-worker");
        (CeleriacApp app, Func<RecordingTransport> transport) = NewApp();
        await using CeleriacApp scope = app;
        app.Task("wireapp.add", (long x, long y) => x + y);
        app.Task("wireapp.fail", long () => throw new InvalidOperationException("fails"));
        app.Task("wireapp.on_error_old", (string id) => id);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);

        await app.Transport.PublishAsync("", "celery", [Decode(celery[0])], Ct);
        await app.Transport.PublishAsync("", "celery", [Decode(celery[2])], Ct);

        Assert.True(await Poll.UntilAsync(() => transport().Published.Count >= 4, TimeSpan.FromSeconds(15)), $"{transport().Published.Count} published");
        TransportMessage callback = Assert.Single(transport().Published, p => Header(p.Message, "task") == "wireapp.add" && Header(p.Message, "parent_id") is not null).Message;
        JsonAssert.Equal(CeleryBody(celery[1]), BodyOf(callback), "callback body");
        TransportMessage errback = Assert.Single(transport().Published, p => Header(p.Message, "task") == "wireapp.on_error_old").Message;
        JsonAssert.Equal(CeleryBody(celery[3]), BodyOf(errback), "errback body");
        string failedId = celery[2].GetProperty("envelope").GetProperty("headers").GetProperty("id").GetString()!;
        Assert.Equal(failedId, Header(errback, "parent_id"));
        Assert.NotNull(Header(errback, "group"));
    }

    private static TransportMessage Decode(JsonElement captured)
    {
        Assert.True(KombuEnvelope.TryDecode(Encoding.UTF8.GetBytes(captured.GetProperty("raw").GetString()!), out TransportMessage? message, out string? error), error);
        return message!;
    }
}
