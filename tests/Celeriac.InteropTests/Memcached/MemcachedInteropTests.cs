using System.Numerics;
using System.Text;
using System.Text.Json;
using Celeriac.Memcached;
using Celeriac.Results;
using Celeriac.TestServers;

namespace Celeriac.InteropTests.Memcached;

/// <summary>
/// Celery's cache backend on memcached, shared with real Celery 5.2 and pylibmc: each side reads the other's results
/// and failures, and chords count on the same <c>chord-unlock-&lt;group&gt;</c> counter whoever set it up.
/// </summary>
public sealed class MemcachedInteropTests(MemcachedInteropFixture fx) : IClassFixture<MemcachedInteropFixture>
{
    private const string PyQueue = MemcachedInteropFixture.PythonQueue;
    private const string NetQueue = MemcachedInteropFixture.CeleriacQueue;

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PythonClient_ReadsCeleriacWorkersResults_ValuesTypesAndFailure()
    {
        string output = await fx.RunPythonAsync("""
            import sys
            from interop_tasks import echo, add, fail
            from interop_client import report
            q = sys.argv[1]
            values = [42, 2.5, 2**70 + 1, 'żółć 東京 🎉', [1, 'a', None, [True]], {'k': [1, {'n': None}], 'ü': 0.1}]
            report([echo.apply_async((v,), queue=q) for v in values] + [add.apply_async((2, 3), queue=q), fail.apply_async(('bad żółć',), queue=q)])
            """, NetQueue);

        IReadOnlyList<PythonOutcome> seen = PythonOutcome.ParseList(output);
        (string? Type, string Json)[] expected =
            [("int", "42"), ("float", "2.5"), ("int", "1180591620717411303425"), ("str", "\"żółć 東京 🎉\""), ("list", "[1,\"a\",null,[true]]"), ("dict", "{\"k\":[1,{\"n\":null}],\"ü\":0.1}"), ("int", "5")];
        Assert.Equal(
            expected.Select(e => (e.Type, JsonText.Canonical(e.Json))),
            seen.Take(7).Select(o => (o.Type, o.ValueJson)));
        Assert.All(seen.Take(7), o => Assert.Equal("SUCCESS", o.State));
        Assert.Equal(("FAILURE", "InvalidOperationException", "bad żółć"), (seen[7].State, seen[7].ExcType, seen[7].ExcMessage));
        await WaitForCeleriacLogAsync($"Task tasks.fail[{seen[7].Id}]");
    }

    [Fact]
    public async Task CeleriacClient_ReadsPythonWorkersResults_ValuesTypesAndFailure()
    {
        CeleriacApp client = fx.Client;
        object?[] values = [42L, 2.5, BigInteger.Pow(2, 70) + 1, "żółć 東京 🎉", new List<object?> { 1L, "a", null, new List<object?> { true } }, new Dictionary<string, object?> { ["k"] = new List<object?> { 1L }, ["ü"] = 0.1 }];
        var sent = new List<AsyncResult>();
        foreach (object? v in values)
        {
            sent.Add(await client.SendTaskAsync("tasks.echo", [v], ct: Ct));
        }

        AsyncResult failed = await client.SendTaskAsync("tasks.fail", ["bad żółć"], ct: Ct);

        string[] got = await Task.WhenAll(sent.Select(async r => JsonText.Canonical((await r.WaitAsync(s_wait, Ct)).Result)));
        string[] expectedJson = ["42", "2.5", "1180591620717411303425", "\"żółć 東京 🎉\"", "[1,\"a\",null,[true]]", "{\"k\":[1],\"ü\":0.1}"];
        Assert.Equal(expectedJson.Select(JsonText.Canonical), got);
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => failed.GetAsync<JsonElement>(s_wait, Ct));
        Assert.Equal((TaskStates.Failure, "ValueError", "bad żółć"), (error.State, error.ExceptionType, error.RemoteMessage));
        Assert.Contains("ValueError: bad żółć", error.RemoteTraceback, StringComparison.Ordinal);
        await fx.PythonWorker.WaitForLogAsync($"Task tasks.fail[{failed.Id}] raised unexpected", s_wait);
    }

    [Fact]
    public async Task Chord_FromPython_RunByCeleriac_CountsOnCelerysCounter()
    {
        // Celery's client sets chord-unlock-<group> to 0 (pylibmc's int) and saves the group; the Celeriac worker
        // increments it per member and, at the last, sends the body.
        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery import chord
            from interop_tasks import add, xsum
            from interop_client import lineage
            q = sys.argv[1]
            r = chord([add.s(i, i).set(queue=q) for i in range(20)], xsum.s().set(queue=q))()
            print(json.dumps(lineage(r, timeout=30)))
            """, NetQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        PythonOutcome body = PythonOutcome.From(doc.RootElement[0]);
        Assert.Equal(("SUCCESS", "380"), (body.State, body.ValueJson));
        await WaitForCeleriacLogAsync($"Task tasks.xsum[{body.Id}] succeeded");
        string group = doc.RootElement[1].GetProperty("group").GetString()!;
        Assert.Null(await fx.Memcached.GetRawAsync("chord-unlock-" + group, Ct)); // joined and cleaned up
    }

    [Fact]
    public async Task Chord_FromCeleriac_HeaderRunByPython_CountsOnCeleriacsCounter()
    {
        // The Celeriac client sets the counter to 0 as Celery's does; Celery's workers increment it with pylibmc
        // (which refuses a missing or non-numeric counter) and the one that completes it sends the body to Celeriac.
        CeleriacTask add = fx.Client.Signature("tasks.add"), xsum = fx.Client.Signature("tasks.xsum");
        Chord chord = Canvas.Chord(Enumerable.Range(0, 20).Select(i => add.S(i, 1).SetQueue(PyQueue)), xsum.S().SetQueue(NetQueue));

        AsyncResult body = await chord.ApplyAsync(ct: Ct);

        Assert.Equal(210, await body.GetAsync<long>(s_wait, Ct));
        GroupResult header = Assert.IsType<GroupResult>(body.Parent);
        foreach (AsyncResult member in header.Results)
        {
            await fx.PythonWorker.WaitForLogAsync($"Task tasks.add[{member.Id}] succeeded", s_wait);
        }

        await WaitForCeleriacLogAsync($"Task tasks.xsum[{body.Id}] succeeded");
        Assert.DoesNotContain("Chord counter", fx.PythonWorker.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoServers_KeysDistributedAsPylibmcDoes_EachSideReadsTheOthers()
    {
        await using MemcachedServer second = await MemcachedServer.StartAsync(ct: Ct);
        string url = $"cache+memcached://{fx.Memcached.Address};{second.Address}/";
        string[] pythonIds = [.. Enumerable.Range(0, 20).Select(_ => Guid.NewGuid().ToString())];
        string[] celeriacIds = [.. Enumerable.Range(0, 20).Select(_ => Guid.NewGuid().ToString())];
        await using var backend = new MemcachedResultBackend(new ResultBackendOptions { Url = UrlText.Parse(url, "result backend") });
        foreach (string id in celeriacIds)
        {
            await backend.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Success, Result = Encoding.UTF8.GetBytes("\"net-" + id + "\"") }, Ct);
        }

        string output = await PythonCelery.RunAsync("""
            import sys, json
            from celery import Celery
            app = Celery('mc', broker='memory://', backend=sys.argv[1])
            n = int(sys.argv[2])
            for task_id in sys.argv[3:3 + n]:
                app.backend.store_result(task_id, 'py-' + task_id, 'SUCCESS')
            print(json.dumps([app.AsyncResult(t).get(timeout=5) for t in sys.argv[3 + n:]]))
            """, [url, "20", .. pythonIds, .. celeriacIds]);

        Assert.Equal(celeriacIds.Select(id => "net-" + id), JsonSerializer.Deserialize<string[]>(output));
        foreach (string id in pythonIds)
        {
            Assert.Equal("\"py-" + id + "\"", Encoding.UTF8.GetString((await backend.GetAsync(id, Ct))!.Result.Span));
        }

        // Both servers hold some: the distribution was exercised, not a single server's.
        int onSecond = 0;
        foreach (string id in pythonIds)
        {
            onSecond += await second.GetRawAsync("celery-task-meta-" + id, Ct) is null ? 0 : 1;
        }

        Assert.InRange(onSecond, 1, 19);
    }

    /// <summary>Waits (bounded) until the Celeriac worker has logged <paramref name="text"/>; fails with its log otherwise.</summary>
    private async Task WaitForCeleriacLogAsync(string text)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(s_wait);
        try
        {
            while (!fx.CeleriacWorkerLog.Text.Contains(text, StringComparison.Ordinal))
            {
                await Task.Delay(20, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            Assert.Fail($"The Celeriac worker did not log '{text}' within {s_wait.TotalSeconds} s:\n{fx.CeleriacWorkerLog.Text}");
        }
    }
}
