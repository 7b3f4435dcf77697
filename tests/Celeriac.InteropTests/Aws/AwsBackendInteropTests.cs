using System.Text.Json;

namespace Celeriac.InteropTests.Aws;

/// <summary>
/// The result backend shared with Celery 5.2 both ways: a Python client reads a Celeriac worker's results (SUCCESS of
/// an int, a float, a big int, a unicode string, a list, a dict; a FAILURE), a Celeriac client reads a Python
/// worker's, and a chord sent by Python (which Celery 5.2 joins with celery.chord_unlock on these stores) runs on the
/// Celeriac worker.
/// </summary>
public abstract class AwsBackendInteropTests(AwsInteropFixture fx)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The values both directions send, as Python literals and as their JSON.</summary>
    private static readonly (string Python, string Json, string Type)[] s_values =
    [
        ("7", "7", "int"),
        ("2.5", "2.5", "float"),
        ("2**70 + 1", "1180591620717411303425", "int"),
        ("'\\u017c\\u00f3\\u0142\\u0107 \\u6771\\u4eac \\U0001F389'", "\"żółć 東京 🎉\"", "str"),
        ("[1, 'a', None, 2.5, [True, False]]", "[1,\"a\",null,2.5,[true,false]]", "list"),
        ("{'k': [1, {'n': None}], '\\u00fc': 'x'}", "{\"k\":[1,{\"n\":null}],\"ü\":\"x\"}", "dict"),
    ];

    [Fact]
    public async Task PythonClient_ReadsTheCeleriacWorkersResults_ValuesTypesAndFailure()
    {
        string values = "[" + string.Join(", ", s_values.Select(v => v.Python)) + "]";
        string output = await fx.RunPythonAsync($$"""
            import sys, json
            from interop_tasks import echo, fail
            from interop_client import outcome
            q = sys.argv[1]
            sent = [echo.apply_async((v,), queue=q) for v in {{values}}]
            failed = fail.apply_async(('boom',), queue=q)
            print(json.dumps([outcome(r) for r in sent] + [outcome(failed)]))
            """, AwsInteropFixture.CeleriacQueue);

        IReadOnlyList<PythonOutcome> seen = PythonOutcome.ParseList(output);
        Assert.Equal(s_values.Length + 1, seen.Count);
        for (int i = 0; i < s_values.Length; i++)
        {
            Assert.Equal(("SUCCESS", s_values[i].Type, JsonText.Canonical(s_values[i].Json)), (seen[i].State, seen[i].Type, seen[i].ValueJson));
        }

        PythonOutcome failure = seen[^1];
        Assert.Equal(("FAILURE", "InvalidOperationException", "boom"), (failure.State, failure.ExcType, failure.ExcMessage));
    }

    [Fact]
    public async Task CeleriacClient_ReadsThePythonWorkersResults_ValuesAndFailure()
    {
        CeleriacApp client = fx.Client;
        var sent = new List<AsyncResult>();
        foreach ((_, string json, _) in s_values)
        {
            sent.Add(await client.SendTaskAsync("tasks.echo", [JsonDocument.Parse(json).RootElement.Clone()], ct: Ct));
        }

        AsyncResult failed = await client.SendTaskAsync("tasks.fail", ["boom"], ct: Ct);

        for (int i = 0; i < s_values.Length; i++)
        {
            JsonElement value = await sent[i].GetAsync(TimeSpan.FromSeconds(30), Ct);
            Assert.Equal(JsonText.Canonical(s_values[i].Json), JsonText.Canonical(value));
            Assert.Equal(TaskStates.Success, await sent[i].GetStateAsync(Ct));
        }

        var error = await Assert.ThrowsAsync<TaskFailedException>(() => failed.GetAsync<int>(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal(("ValueError", "builtins", "boom"), (error.ExceptionType, error.ExceptionModule, error.RemoteMessage));
        Assert.Equal(TaskStates.Failure, await failed.GetStateAsync(Ct));
    }

    [Fact]
    public async Task PythonChord_RunByTheCeleriacWorker_JoinedByCeleryChordUnlock()
    {
        string output = await fx.RunPythonAsync("""
            import sys, json
            from celery import chord
            from interop_tasks import add, xsum
            from interop_client import outcome
            q = sys.argv[1]
            r = chord([add.s(i, i).set(queue=q) for i in range(4)])(xsum.s().set(queue=q))
            print(json.dumps([outcome(r)]))
            """, AwsInteropFixture.CeleriacQueue);

        PythonOutcome body = Assert.Single(PythonOutcome.ParseList(output));
        Assert.Equal(("SUCCESS", "12"), (body.State, body.ValueJson));
    }
}

public sealed class S3BackendInteropTests(S3InteropFixture fx) : AwsBackendInteropTests(fx), IClassFixture<S3InteropFixture>
{
    [Fact]
    public async Task BothSides_WriteUnderTheBasePath_TheSameKeys()
    {
        string id = Guid.NewGuid().ToString();
        await fx.RunPythonAsync("""
            import sys
            from interop_tasks import app
            app.backend.mark_as_done(sys.argv[1], 5)
            """, id);

        Assert.Contains(S3InteropFixture.BasePath + "celery-task-meta-" + id, fx.Server.ObjectKeys(fx.Bucket));
        Assert.Equal(5, await fx.Client.AsyncResult(id).GetAsync<int>(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
    }
}

public sealed class DynamoDbBackendInteropTests(DynamoDbInteropFixture fx) : AwsBackendInteropTests(fx), IClassFixture<DynamoDbInteropFixture>
{
    [Fact]
    public async Task CeleriacChord_JoinedByTheCeleriacWorkersCounter_PythonReadsTheBody()
    {
        CeleriacApp client = fx.Client;
        Chord chord = global::Celeriac.Canvas.Chord(
            Enumerable.Range(0, 4).Select(i => client.Signature("tasks.add").S(i, i).SetQueue(AwsInteropFixture.CeleriacQueue)),
            client.Signature("tasks.xsum").S().SetQueue(AwsInteropFixture.CeleriacQueue));

        AsyncResult body = await client.ApplyAsync(chord, ct: TestContext.Current.CancellationToken);

        Assert.Equal(12, await body.GetAsync<int>(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        string output = await fx.RunPythonAsync("""
            import sys, json
            from interop_tasks import app
            from interop_client import outcome
            print(json.dumps([outcome(app.AsyncResult(sys.argv[1]))]))
            """, body.Id);
        PythonOutcome seen = Assert.Single(PythonOutcome.ParseList(output));
        Assert.Equal(("SUCCESS", "12"), (seen.State, seen.ValueJson));
    }

    [Fact]
    public async Task PythonReadsTheItemCeleriacWrote_AndCeleriacReadsPythons()
    {
        string ours = Guid.NewGuid().ToString(), theirs = Guid.NewGuid().ToString();
        await using (CeleriacApp app = fx.NewApp())
        {
            await app.ResultBackend.StoreAsync(new TaskResultMeta { TaskId = ours, Status = TaskStates.Success, Result = "[1, \"ü\"]"u8.ToArray() }, TestContext.Current.CancellationToken);
        }

        string output = await fx.RunPythonAsync("""
            import sys, json
            from interop_tasks import app
            app.backend.mark_as_done(sys.argv[2], {'n': 2**65})
            item = app.backend.client.get_item(TableName=app.backend.table_name, Key={'id': {'S': str(('celery-task-meta-' + sys.argv[1]).encode())}})['Item']
            print(json.dumps({'meta': app.backend.get_task_meta(sys.argv[1])['result'], 'attributes': sorted(item)}))
            """, ours, theirs);

        using JsonDocument doc = JsonDocument.Parse(output);
        Assert.Equal("[1,\"ü\"]", JsonText.Canonical(doc.RootElement.GetProperty("meta")));
        Assert.Equal("[\"id\",\"result\",\"timestamp\",\"ttl\"]", JsonText.Canonical(doc.RootElement.GetProperty("attributes")));
        JsonElement value = await fx.Client.AsyncResult(theirs).GetAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal("{\"n\":36893488147419103232}", JsonText.Canonical(value));
    }
}
