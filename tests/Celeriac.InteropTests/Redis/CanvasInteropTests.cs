using System.Text.Json;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// Canvas across languages on a real Redis (broker and result backend): chains, chords, groups and callbacks whose
/// steps run on a real Celery 5.2 worker and on a Celeriac worker, sent from .NET and from a Python client. Each side
/// only knows the other through the wire: the chain in the message's embed, the chord's body in each member's embed
/// and its size under <c>celery-taskset-meta-&lt;group&gt;.s</c>, the join in <c>.j</c>, the saved group's tuples.
/// </summary>
public sealed class CanvasInteropTests(RedisInteropFixture fx) : IAsyncLifetime
{
    /// <summary>The shared Python worker's queue (interop_tasks.py, Python-only py.scale among them).</summary>
    private const string PyQueue = RedisInteropFixture.PythonQueue;

    /// <summary>The shared Celeriac worker's queue (the Quickstart's tasks, named as interop_tasks.py names them).</summary>
    private const string NetQueue = RedisInteropFixture.CeleriacQueue;

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private CeleriacApp Client => fx.Client;

    public async ValueTask InitializeAsync() => await fx.EnsureCeleriacWorkerAsync();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    // ---- .NET sends, both languages run ----

    [Fact]
    public async Task Chain_FromCeleriac_MiddleStepOnPython_EndsWithValueAndParentsWalkBack()
    {
        CeleriacTask add = Client.Signature("tasks.add"), scale = Client.Signature("py.scale");
        Signature chain = add.S(2, 3).SetQueue(NetQueue) | scale.S(10).SetQueue(PyQueue) | add.S(1).SetQueue(NetQueue);

        AsyncResult last = await chain.ApplyAsync(ct: Ct);

        // (2 + 3) * 10 + 1: each step got the previous one's result as its first argument, across the languages.
        Assert.Equal(51, await last.GetAsync<long>(s_wait, Ct));
        AsyncResult middle = Assert.IsType<AsyncResult>(last.Parent);
        AsyncResult first = Assert.IsType<AsyncResult>(middle.Parent);
        Assert.Null(first.Parent);
        Assert.Equal(50, await middle.GetAsync<long>(s_wait, Ct));
        Assert.Equal(5, await first.GetAsync<long>(s_wait, Ct));
        Assert.Equal(3, new[] { first.Id, middle.Id, last.Id }.Distinct().Count());

        // Who ran what: py.scale exists only in Python, and the Celeriac worker sent the Python step and Celery the last.
        await WaitForLogAsync(fx.CeleriacWorkerLog, $"Task tasks.add[{first.Id}] succeeded");
        await fx.PythonWorker.WaitForLogAsync($"Task py.scale[{middle.Id}] succeeded", s_wait);
        await WaitForLogAsync(fx.CeleriacWorkerLog, $"Task tasks.add[{last.Id}] succeeded");

        // Each worker recorded the next step it sent as its result's child, as Celery does.
        await first.RefreshAsync(Ct);
        Assert.Equal(middle.Id, Assert.Single(first.Children).Id);
        await middle.RefreshAsync(Ct);
        Assert.Equal(last.Id, Assert.Single(middle.Children).Id);
    }

    [Fact]
    public async Task Chord_FromCeleriac_HeaderOnPython_BodyOnCeleriac_GetsResultsInOrder()
    {
        CeleriacTask add = Client.Signature("tasks.add"), echo = Client.Signature("tasks.echo");
        Chord chord = Canvas.Chord(Enumerable.Range(0, 40).Select(i => add.S(i, i).SetQueue(PyQueue)), echo.S().SetQueue(NetQueue));

        AsyncResult body = await chord.ApplyAsync(ct: Ct);

        // The Python worker that finished the header last joined it (Celery's on_chord_part_return on the size this
        // client stored) and sent the body with the results in header order, whatever order they finished in.
        Assert.Equal(Enumerable.Range(0, 40).Select(i => 2L * i), await body.GetAsync<long[]>(s_wait, Ct));
        GroupResult header = Assert.IsType<GroupResult>(body.Parent);
        Assert.Equal(40, header.Results.Count);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => 2L * i), await header.JoinAsync<long>(s_wait, Ct));
        foreach (AsyncResult member in header.Results)
        {
            await fx.PythonWorker.WaitForLogAsync($"Task tasks.add[{member.Id}] succeeded", s_wait);
        }

        await WaitForLogAsync(fx.CeleriacWorkerLog, $"Task tasks.echo[{body.Id}] succeeded");
    }

    [Fact]
    public async Task Chord_FromPython_HeaderOnPython_BodyOnCeleriac_GetsResultsInOrder()
    {
        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery import chord
            from interop_tasks import add, echo
            from interop_client import lineage
            pyq, netq = sys.argv[1], sys.argv[2]
            r = chord([add.s(i, i).set(queue=pyq) for i in range(40)], echo.s().set(queue=netq))()
            print(json.dumps(lineage(r, timeout=60)))
            """, PyQueue, NetQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement[] lineage = [.. doc.RootElement.EnumerateArray()];
        Assert.Equal(2, lineage.Length);
        PythonOutcome body = PythonOutcome.From(lineage[0]);
        Assert.Equal(("SUCCESS", "list"), (body.State, body.Type));
        Assert.Equal(JsonText.Canonical(JsonSerializer.Serialize(Enumerable.Range(0, 40).Select(i => 2 * i))), body.ValueJson);
        PythonOutcome[] members = [.. lineage[1].GetProperty("members").EnumerateArray().Select(PythonOutcome.From)];
        Assert.Equal(40, members.Length);
        foreach (PythonOutcome member in members)
        {
            await fx.PythonWorker.WaitForLogAsync($"Task tasks.add[{member.Id}] succeeded", s_wait);
        }

        await WaitForLogAsync(fx.CeleriacWorkerLog, $"Task tasks.echo[{body.Id}] succeeded");

        // Celeriac reads the same chord: the body's value and the header's members, by their ids.
        Assert.Equal(Enumerable.Range(0, 40).Select(i => 2L * i), await Client.AsyncResult(body.Id).GetAsync<long[]>(s_wait, Ct));
    }

    [Fact]
    public async Task Group_StartedAndSavedByPython_RestoredByCeleriac_ValuesInOrder()
    {
        // Members alternate between the two workers; Python saves the group (celery-taskset-meta-<id>) and exits.
        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery import group
            from interop_tasks import add
            pyq, netq = sys.argv[1], sys.argv[2]
            res = group(add.s(i, 100).set(queue=pyq if i % 2 else netq) for i in range(20)).apply_async()
            res.save()
            print(json.dumps({'id': res.id, 'members': [r.id for r in res.results]}))
            """, PyQueue, NetQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        string groupId = doc.RootElement.GetProperty("id").GetString()!;
        string[] memberIds = [.. doc.RootElement.GetProperty("members").EnumerateArray().Select(e => e.GetString()!)];

        GroupResult? restored = await GroupResult.RestoreAsync(Client, groupId, Ct);

        Assert.NotNull(restored);
        Assert.Equal(groupId, restored.Id);
        Assert.Equal(memberIds, restored.Results.Select(r => r.Id));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i + 100L), await restored.JoinAsync<long>(s_wait, Ct));
        await restored.RefreshAllAsync(Ct);
        Assert.Equal(20, restored.CompletedCount);
        Assert.True(restored.Successful);
        for (int i = 0; i < memberIds.Length; i++)
        {
            string ran = $"Task tasks.add[{memberIds[i]}] succeeded";
            if (i % 2 == 1)
            {
                await fx.PythonWorker.WaitForLogAsync(ran, s_wait);
            }
            else
            {
                await WaitForLogAsync(fx.CeleriacWorkerLog, ran);
            }
        }
    }

    [Fact]
    public async Task NestedShapesAndMaps_FromCeleriac_RunByCelery_SameValuesAsCelery()
    {
        // The same shapes as NestedShapesAndMaps_FromPython_RunByCeleriac, built in .NET and run by Celery's worker,
        // which sends each next step, joins each chord and runs its own celery.map/starmap.
        CeleriacTask add = Client.Signature("tasks.add"), mul = Client.Signature("tasks.mul"), xsum = Client.Signature("tasks.xsum");
        static Signature P(Signature s) => s.SetQueue(PyQueue);

        AsyncResult upgraded = await (P(add.S(1, 1)) | Canvas.Group(P(add.S(10)), P(mul.S(10))) | P(xsum.S())).ApplyAsync(ct: Ct);
        AsyncResult chains = await Canvas.Chord(Enumerable.Range(0, 5).Select(i => P(add.S(i, i)) | P(mul.S(3))), P(xsum.S())).ApplyAsync(ct: Ct);
        AsyncResult chordInChain = await (Canvas.Chord(Enumerable.Range(0, 3).Select(i => P(add.S(i, i))), P(xsum.S())) | P(mul.S(2))).ApplyAsync(ct: Ct);
        AsyncResult chordOfChords = await Canvas.Chord([Canvas.Chord([P(add.S(1, 1)), P(add.S(2, 2))], P(xsum.S())), P(add.S(10, 10))], P(xsum.S())).ApplyAsync(ct: Ct);
        GroupResult chordsInGroup = await Canvas.Group(
            Canvas.Chord([P(add.S(1, 1))], P(xsum.S())),
            Canvas.Chord([P(add.S(2, 2)), P(add.S(3, 3))], P(xsum.S()))).ApplyAsync(ct: Ct);
        AsyncResult starmap = await Canvas.Starmap(add.S(), Enumerable.Range(0, 5).Select(i => (object?)new[] { i, i })).SetQueue(PyQueue).ApplyAsync(ct: Ct);
        AsyncResult map = await Canvas.Map(xsum.S(), [new[] { 1, 2 }, new[] { 3, 4, 5 }]).SetQueue(PyQueue).ApplyAsync(ct: Ct);
        AsyncResult chunks = await Canvas.Chunks(add.S(), Enumerable.Range(0, 7).Select(i => (object?)new[] { i, 1 }), 3).SetQueue(PyQueue).ApplyAsync(ct: Ct);

        Assert.Equal(32, await upgraded.GetAsync<long>(s_wait, Ct));
        Assert.Equal(60, await chains.GetAsync<long>(s_wait, Ct));
        Assert.Equal(12, await chordInChain.GetAsync<long>(s_wait, Ct));
        Assert.Equal(26, await chordOfChords.GetAsync<long>(s_wait, Ct));
        Assert.Equal([2L, 10L], await chordsInGroup.JoinAsync<long>(s_wait, Ct));
        Assert.Equal("[0,2,4,6,8]", JsonText.Canonical((await starmap.WaitAsync(s_wait, Ct)).Result));
        Assert.Equal("[3,12]", JsonText.Canonical((await map.WaitAsync(s_wait, Ct)).Result));
        Assert.Equal("[[1,2,3],[4,5,6],[7]]", JsonText.Canonical((await chunks.WaitAsync(s_wait, Ct)).Result));
        await fx.PythonWorker.WaitForLogAsync($"Task celery.starmap[{starmap.Id}] succeeded", s_wait);
    }

    // ---- a Python client sends, Celeriac runs everything ----

    [Fact]
    public async Task Chain_FromPython_RunByCeleriac_EndsWithValueAndParentsWalkBack()
    {
        string output = await fx.RunPythonAsync("""
            import sys, json
            from interop_tasks import add, mul
            from interop_client import lineage
            q = sys.argv[1]
            r = (add.s(1, 2).set(queue=q) | mul.s(10).set(queue=q) | add.s(5).set(queue=q)).apply_async()
            print(json.dumps(lineage(r)))
            """, NetQueue);

        PythonOutcome[] steps = [.. PythonOutcome.ParseList(output)];
        Assert.Equal(["35", "30", "3"], steps.Select(s => s.ValueJson));
        Assert.All(steps, s => Assert.Equal(("SUCCESS", "int"), (s.State, s.Type)));
        await WaitForLogAsync(fx.CeleriacWorkerLog, $"Task tasks.add[{steps[2].Id}] succeeded");
        await WaitForLogAsync(fx.CeleriacWorkerLog, $"Task tasks.mul[{steps[1].Id}] succeeded");
        await WaitForLogAsync(fx.CeleriacWorkerLog, $"Task tasks.add[{steps[0].Id}] succeeded");
    }

    [Fact]
    public async Task Chain_FromPython_StepFailsOnCeleriac_LaterStepsFailAndTheErrbackGetsTheFailedId()
    {
        // Celery puts a chain's link_error on every step; only the step that fails calls it (old style: its id).
        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery.utils import uuid
            from interop_tasks import add, app, echo, fail
            from interop_client import lineage, outcome
            q = sys.argv[1]
            eb = uuid()
            r = (add.s(1, 2).set(queue=q) | fail.si('boom').set(queue=q) | add.s(5).set(queue=q)).apply_async(
                link_error=echo.s().set(queue=q, task_id=eb))
            print(json.dumps({'steps': lineage(r), 'last': outcome(r, follow_parents=False),
                              'errback': outcome(app.AsyncResult(eb))}))
            """, NetQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        PythonOutcome[] steps = [.. doc.RootElement.GetProperty("steps").EnumerateArray().Select(PythonOutcome.From)];
        Assert.Equal(3, steps.Length);
        Assert.Equal(("SUCCESS", "3"), (steps[2].State, steps[2].ValueJson));
        Assert.Equal(("FAILURE", "InvalidOperationException", "boom"), (steps[1].State, steps[1].ExcType, steps[1].ExcMessage));

        // The last step never ran but failed with its predecessor, so that whoever waits on the chain's end is told.
        PythonOutcome last = PythonOutcome.From(doc.RootElement.GetProperty("last"));
        Assert.Equal(("FAILURE", "InvalidOperationException", "boom"), (last.State, last.ExcType, last.ExcMessage));
        Assert.DoesNotContain($"Task tasks.add[{last.Id}] received", fx.CeleriacWorkerLog.Text, StringComparison.Ordinal);
        PythonOutcome errback = PythonOutcome.From(doc.RootElement.GetProperty("errback"));
        Assert.Equal(("SUCCESS", JsonSerializer.Serialize(steps[1].Id)), (errback.State, errback.ValueJson));
    }

    [Fact]
    public async Task Chord_FromPython_RunByCeleriac_BodyGetsResultsInOrder()
    {
        // Python's chord() stores the size under celery-taskset-meta-<group>.s; the Celeriac worker joins on it.
        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery import chord
            from interop_tasks import add, echo, xsum
            from interop_client import lineage
            q = sys.argv[1]
            ordered = chord([add.s(i, i).set(queue=q) for i in range(100)], echo.s().set(queue=q))()
            summed = chord((add.s(i, 1).set(queue=q) for i in range(10)), xsum.s().set(queue=q))()
            print(json.dumps({'ordered': lineage(ordered, timeout=60), 'summed': lineage(summed, timeout=60)}))
            """, NetQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement ordered = doc.RootElement.GetProperty("ordered");
        PythonOutcome body = PythonOutcome.From(ordered[0]);
        Assert.Equal(("SUCCESS", "list"), (body.State, body.Type));
        Assert.Equal(JsonText.Canonical(JsonSerializer.Serialize(Enumerable.Range(0, 100).Select(i => 2 * i))), body.ValueJson);
        Assert.Equal(100, ordered[1].GetProperty("members").GetArrayLength());
        await WaitForLogAsync(fx.CeleriacWorkerLog, $"Task tasks.echo[{body.Id}] succeeded");

        // The Celeriac worker that completed the join removed its keys, as Celery's own join does.
        string group = ordered[1].GetProperty("group").GetString()!;
        string[] joinKeys = [.. new[] { ".j", ".t", ".s" }.Select(k => $"celery-taskset-meta-{group}{k}")];
        Assert.Equal("0", (await fx.Server.CliAsync(["-n", "1", "EXISTS", .. joinKeys])).Trim());

        PythonOutcome summed = PythonOutcome.From(doc.RootElement.GetProperty("summed")[0]);
        Assert.Equal(("SUCCESS", "55"), (summed.State, summed.ValueJson));
    }

    [Fact]
    public async Task NestedShapesAndMaps_FromPython_RunByCeleriac_SameValuesAsCelery()
    {
        // What Celery's canvas builds from these: a group followed by a task becomes a chord, a chain in a chord's
        // header reports its last step, a chord in a chain passes its body's result on, map/starmap/chunks are the
        // built-in celery.map/starmap/chunks tasks (routed by apply_async's queue: Celery's map ignores set()).
        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery import chain, chord, group
            from interop_tasks import add, mul, xsum
            from interop_client import outcome
            q = sys.argv[1]
            S = lambda sig: sig.set(queue=q)
            upgraded = (S(add.s(1, 1)) | group(S(add.s(10)), S(mul.s(10))) | S(xsum.s())).apply_async()
            chains = chord([(S(add.s(i, i)) | S(mul.s(3))) for i in range(5)], S(xsum.s()))()
            chord_in_chain = chain(chord([S(add.s(i, i)) for i in range(3)], S(xsum.s())), S(mul.s(2))).apply_async()
            chord_of_chords = chord([chord([S(add.s(1, 1)), S(add.s(2, 2))], S(xsum.s())), S(add.s(10, 10))], S(xsum.s()))()
            chords_in_group = group(chord([S(add.s(1, 1))], S(xsum.s())), chord([S(add.s(2, 2)), S(add.s(3, 3))], S(xsum.s()))).apply_async()
            mapped = add.starmap([(i, i) for i in range(5)]).apply_async(queue=q)
            summed = xsum.map([[1, 2], [3, 4, 5]]).apply_async(queue=q)
            chunked = add.chunks([(i, 1) for i in range(7)], 3).apply_async(queue=q)
            print(json.dumps({'upgraded': outcome(upgraded), 'chains': outcome(chains), 'chord_in_chain': outcome(chord_in_chain),
                              'chord_of_chords': outcome(chord_of_chords), 'chords_in_group': chords_in_group.get(timeout=30),
                              'starmap': outcome(mapped), 'map': outcome(summed), 'chunks': chunked.get(timeout=30)}))
            """, NetQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        string Value(string name)
        {
            PythonOutcome o = PythonOutcome.From(root.GetProperty(name));
            Assert.True(o.State == "SUCCESS", $"{name}: {o.State} {o.ExcType}: {o.ExcMessage}");
            return o.ValueJson;
        }

        Assert.Equal("32", Value("upgraded"));
        Assert.Equal("60", Value("chains"));
        Assert.Equal("12", Value("chord_in_chain"));
        Assert.Equal("26", Value("chord_of_chords"));
        Assert.Equal("[2,10]", JsonText.Canonical(root.GetProperty("chords_in_group")));
        Assert.Equal("[0,2,4,6,8]", Value("starmap"));
        Assert.Equal("[3,12]", Value("map"));
        Assert.Equal("[[1,2,3],[4,5,6],[7]]", JsonText.Canonical(root.GetProperty("chunks")));
    }

    [Fact]
    public async Task Chord_FromPython_MemberFailsOnCeleriac_BodyFailsWithChordErrorAndGetRaises()
    {
        // A plain get() on the body raises whichever error it meets first: Celery's get() follows the parents, so
        // the failed member's own error once the header has it, else the body's ChordError. Without following the
        // parents, get() waits for the body's own outcome.
        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery import chord
            from celery.utils import uuid
            from interop_tasks import add, app, echo, fail, xsum
            from interop_client import outcome
            q = sys.argv[1]
            eb = uuid()
            body = xsum.s().set(queue=q).on_error(echo.s().set(queue=q, task_id=eb))
            r = chord([add.s(1, 1).set(queue=q), fail.s('boom').set(queue=q), add.s(2, 2).set(queue=q)], body)()
            try:
                raised = ['nothing', repr(r.get(timeout=30))]
            except Exception as e:
                raised = [type(e).__name__, str(e)]
            print(json.dumps({'raised': raised, 'body': outcome(r, follow_parents=False),
                              'members': [outcome(m) for m in r.parent.results], 'errback': outcome(app.AsyncResult(eb), poll=True)}))
            """, NetQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        PythonOutcome[] members = [.. root.GetProperty("members").EnumerateArray().Select(PythonOutcome.From)];
        Assert.Equal(("FAILURE", "InvalidOperationException", "boom"), (members[1].State, members[1].ExcType, members[1].ExcMessage));
        Assert.Equal(["2", "4"], new[] { members[0], members[2] }.Select(m => m.ValueJson));
        string expected = $"Dependency {members[1].Id} raised InvalidOperationException('boom')";
        string[] raised = [.. root.GetProperty("raised").EnumerateArray().Select(e => e.GetString()!)];
        Assert.Contains((raised[0], raised[1]), new[] { ("InvalidOperationException", "boom"), ("ChordError", expected) });

        // The body failed with celery.exceptions.ChordError naming the member, as Celery's own join words it, and never ran.
        PythonOutcome body = PythonOutcome.From(root.GetProperty("body"));
        Assert.Equal(("FAILURE", "ChordError", expected), (body.State, body.ExcType, body.ExcMessage));
        Assert.Equal("celery.exceptions", root.GetProperty("body").GetProperty("exc_module").GetString());
        Assert.DoesNotContain($"tasks.xsum[{body.Id}]", fx.CeleriacWorkerLog.Text, StringComparison.Ordinal);

        // The body's old-style errback ran as Celery's chord_error_from_stack runs it: with the body's id.
        PythonOutcome errback = PythonOutcome.From(root.GetProperty("errback"));
        Assert.Equal(("SUCCESS", JsonSerializer.Serialize(body.Id)), (errback.State, errback.ValueJson));
    }

    [Fact]
    public async Task LinkAndOldStyleLinkError_FromPython_RunByCeleriac_CallbacksGetResultAndTaskId()
    {
        // The callbacks get fixed ids, so that Python can read what they returned: the link gets the task's result,
        // the old-style errback (one parameter: Celeriac sends it, as Celery does, with the failed task's id) that id.
        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery.utils import uuid
            from interop_tasks import add, app, echo, fail, mul
            from interop_client import outcome
            q = sys.argv[1]
            cb, eb, cb_unused, eb_unused = uuid(), uuid(), uuid(), uuid()
            ok = add.apply_async((2, 3), queue=q, link=mul.s(10).set(queue=q, task_id=cb),
                                 link_error=echo.s().set(queue=q, task_id=eb_unused))
            bad = fail.apply_async(('boom',), queue=q, link=mul.s(10).set(queue=q, task_id=cb_unused),
                                   link_error=echo.s().set(queue=q, task_id=eb))
            out = {'ok': outcome(ok), 'callback': outcome(app.AsyncResult(cb)),
                   'bad': outcome(bad), 'errback': outcome(app.AsyncResult(eb))}
            # Read once both callbacks that should run have: the worker sends a task's callbacks as it finishes it.
            out['unused'] = [app.AsyncResult(cb_unused).state, app.AsyncResult(eb_unused).state]
            print(json.dumps(out))
            """, NetQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        Assert.Equal("5", PythonOutcome.From(root.GetProperty("ok")).ValueJson);
        Assert.Equal("50", PythonOutcome.From(root.GetProperty("callback")).ValueJson);
        PythonOutcome bad = PythonOutcome.From(root.GetProperty("bad"));
        Assert.Equal(("FAILURE", "InvalidOperationException", "boom"), (bad.State, bad.ExcType, bad.ExcMessage));
        PythonOutcome errback = PythonOutcome.From(root.GetProperty("errback"));
        Assert.Equal(("SUCCESS", "str"), (errback.State, errback.Type));
        Assert.Equal(JsonSerializer.Serialize(bad.Id), errback.ValueJson);
        await WaitForLogAsync(fx.CeleriacWorkerLog, $"Task tasks.echo[{errback.Id}] succeeded");

        // Only the matching callback of each ran: the link of the failed task and the errback of the one that
        // succeeded were never sent (a worker sends a task's callbacks as it finishes it, so they would have been by
        // the time the other task's callback had run and Python had read it).
        Assert.Equal(["PENDING", "PENDING"], root.GetProperty("unused").EnumerateArray().Select(e => e.GetString()!));
    }

    /// <summary>Waits (bounded) until the Celeriac worker has logged <paramref name="text"/>; fails with its log otherwise.</summary>
    private static async Task WaitForLogAsync(CapturedLog log, string text)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(s_wait);
        try
        {
            while (!log.Text.Contains(text, StringComparison.Ordinal))
            {
                await Task.Delay(20, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            Assert.Fail($"the Celeriac worker did not log '{text}' within {s_wait.TotalSeconds} s:\n{log.Text}");
        }
    }
}
