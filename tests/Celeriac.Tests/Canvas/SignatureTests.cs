using System.Text.Json.Nodes;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Canvas;

/// <summary>Signatures as values: Celery's dict, partial application, immutability, and what <c>|</c> builds.</summary>
public sealed class SignatureTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly CeleriacApp s_app = RunningWorker.NewApp();

    private static CeleriacTask Add => s_app.Signature("tasks.add");

    [Fact]
    public void ToJson_IsCelerysDict()
    {
        Signature sig = Add.S(2, 2.5, "x").Set("queue", "low");

        JsonAssert.Equal(
            JsonAssert.Parse("""{"task": "tasks.add", "args": [2, 2.5, "x"], "kwargs": {}, "options": {"queue": "low"}, "subtask_type": null, "immutable": false}"""),
            JsonAssert.Parse(sig.ToString()));
    }

    [Fact]
    public void FromJson_EveryShape_RoundTrips()
    {
        Signature chord = global::Celeriac.Canvas.Chord([Add.S(1, 1), Add.Si(2, 2)], Add.S(3));
        Signature chain = Add.S(1, 1) | Add.S(2) | chord;
        Signature chunks = global::Celeriac.Canvas.Chunks(Add.S(), [new[] { 1, 2 }, new[] { 3, 4 }], 1);
        Signature map = global::Celeriac.Canvas.Map(Add.S(), [1, 2]);
        Signature starmap = global::Celeriac.Canvas.Starmap(Add.S(), [new[] { 1, 2 }]);

        foreach (Signature sig in new[] { chord, chain, chunks, map, starmap, global::Celeriac.Canvas.Group(Add.S(1, 1)) })
        {
            Signature back = Signature.FromJson(JsonNode.Parse(sig.ToString())!);
            Assert.Equal(sig.GetType(), back.GetType());
            JsonAssert.Equal(JsonAssert.Parse(sig.ToString()), JsonAssert.Parse(back.ToString()));
        }

        Assert.Equal(["chord", "chain", "chunks", "xmap", "xstarmap"], new[] { chord, chain, chunks, map, starmap }.Select(s => s.SubtaskType));
    }

    [Fact]
    public void Clone_PartialArgumentsGoFirst_ImmutableIgnoresThem()
    {
        Assert.Equal("[1,2,3]", Add.S(2, 3).Partial(1).Args.ToJsonString());
        Assert.Equal("[2,3]", Add.Si(2, 3).Partial(1).Args.ToJsonString());
        Assert.Equal("""{"z":1}""", Add.S(2, 3).Clone(null, new Dictionary<string, object?> { ["z"] = 1 }).Kwargs.ToJsonString());
    }

    [Fact]
    public void Pipe_BuildsCelerysShapes()
    {
        // A chain of chains is one chain; a group followed by a task is a chord; a chord followed by a task chains its body.
        Signature chain = (Add.S(1, 1) | Add.S(2)) | (Add.S(3) | Add.S(4));
        Assert.Equal(4, Assert.IsType<Chain>(chain).Tasks.Count);
        Chord chord = Assert.IsType<Chord>(global::Celeriac.Canvas.Group(Add.S(1, 1), Add.S(2, 2)) | Add.S(5));
        Assert.Equal("tasks.add", chord.Body!.Task);
        Chord longer = Assert.IsType<Chord>(chord | Add.S(6));
        Assert.IsType<Chain>(longer.Body);
        Signature ending = Add.S(1, 1) | global::Celeriac.Canvas.Group(Add.S(1), Add.S(2)) | Add.S(9);
        Assert.IsType<Chord>(Assert.IsType<Chain>(ending).Tasks[^1]);
    }

    [Fact]
    public void Link_OnAGroup_IsRefusedAsCeleryRefusesIt()
    {
        Assert.Throws<InvalidOperationException>(() => global::Celeriac.Canvas.Group(Add.S(1, 1)).Link(Add.S()));
    }

    [Fact]
    public async Task Chord_OnTheRpcBackend_IsRefusedBeforeAnythingIsSent()
    {
        await using CeleriacApp app = RunningWorker.NewApp(o => o.ResultBackend = "disabled://");
        CeleriacTask add = app.Signature("tasks.add");

        await Assert.ThrowsAsync<NotSupportedException>(() => global::Celeriac.Canvas.Chord([add.S(1, 1)], add.S()).ApplyAsync(ct: Ct));
        await Assert.ThrowsAsync<NotSupportedException>(() => (add.S(1, 1) | global::Celeriac.Canvas.Group(add.S(1), add.S(2)) | add.S()).ApplyAsync(ct: Ct));
        Assert.Equal(0, await app.Transport.GetQueueLengthAsync("celery", Ct));
    }

    [Fact]
    public async Task Unbound_ApplyAsync_SaysHowToBindIt()
    {
        var sig = new Signature("tasks.add");

        InvalidOperationException e = await Assert.ThrowsAsync<InvalidOperationException>(() => sig.ApplyAsync(ct: Ct));

        Assert.Contains("app.ApplyAsync", e.Message, StringComparison.Ordinal);
    }
}
