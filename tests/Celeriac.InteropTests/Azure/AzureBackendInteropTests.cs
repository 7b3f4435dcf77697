using System.Text.Json;
using Azure.Storage.Blobs;
using Celeriac.Results;

namespace Celeriac.InteropTests.Azure;

/// <summary>
/// Results in Celery's Azure Block Blob backend (azurite), read across languages: a Python Celery 5.2 client reads what
/// a Celeriac worker stored, and a Celeriac client what a Python worker stored (SUCCESS of each JSON type, FAILURE).
/// </summary>
public sealed class AzureBackendInteropTests(AzureInteropFixture fx) : IClassFixture<AzureInteropFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public Task ValueTypes_StoredByPythonWorker_CeleriacClientReadsSameValues() => CeleriacToCelery.ValuesEchoedByPythonAsync(fx.Client);

    [Fact]
    public async Task Failure_StoredByPythonWorker_CeleriacClientReadsValueError()
    {
        AsyncResult failed = await fx.Client.SendTaskAsync("tasks.fail", ["bad value żółć"], ct: Ct);

        var error = await Assert.ThrowsAsync<TaskFailedException>(() => failed.GetAsync<JsonElement>(s_wait, Ct));

        Assert.Equal((TaskStates.Failure, "ValueError", "builtins", "bad value żółć"), (error.State, error.ExceptionType, error.ExceptionModule, error.RemoteMessage));
        Assert.Contains("ValueError: bad value żółć", error.RemoteTraceback, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ValueTypesAndFailure_StoredByCeleriacWorker_PythonClientReadsThem()
    {
        string output = await fx.RunPythonAsync("""
            import sys, json
            from interop_tasks import echo, fail
            from interop_client import outcome
            q = sys.argv[1]
            values = [5, 2.5, 2.0, 2**64 + 1, -(2**70), 'h\u00e9llo \u6771\u4eac \U0001F389', [1, 'a', None, 2.5, [True, False]],
                      {'k': [1, {'n': None}], '\u00fc': 'x', 'f': 0.1}, None, True, '']
            sent = [echo.apply_async((v,), queue=q) for v in values]
            failed = fail.apply_async(('bad \u017c\u00f3\u0142\u0107',), queue=q)
            out = []
            for v, r in zip(values, sent):
                o = outcome(r)
                o['sent'] = json.dumps(v)
                o['sent_type'] = type(v).__name__
                out.append(o)
            print(json.dumps({'echo': out, 'failed': outcome(failed), 'backend': type(echo.backend).__name__}))
            """, AzureInteropFixture.CeleriacQueue);

        using JsonDocument doc = JsonDocument.Parse(output);
        Assert.Equal("AzureBlockBlobBackend", doc.RootElement.GetProperty("backend").GetString());
        JsonElement[] echoes = [.. doc.RootElement.GetProperty("echo").EnumerateArray()];
        Assert.Equal(11, echoes.Length);
        foreach (JsonElement e in echoes)
        {
            PythonOutcome o = PythonOutcome.From(e);
            string sent = JsonText.Canonical(e.GetProperty("sent").GetString()!);
            Assert.True(o.State == "SUCCESS", $"echo({sent}) ended {o.State}: {o.ExcType}: {o.ExcMessage}");
            Assert.Equal(sent, o.ValueJson);
            Assert.Equal(e.GetProperty("sent_type").GetString(), o.Type);
        }

        PythonOutcome failed = PythonOutcome.From(doc.RootElement.GetProperty("failed"));
        Assert.Equal(("FAILURE", "InvalidOperationException", "bad żółć"), (failed.State, failed.ExcType, failed.ExcMessage));
    }

    [Fact]
    public async Task Result_StoredByCeleriacWorker_IsCeleryBlobInCeleryContainer()
    {
        // Celery's names: container 'celery', blob 'celery-task-meta-<id>', content its JSON document.
        string output = await fx.RunPythonAsync("""
            import sys, json
            from interop_tasks import add
            r = add.apply_async((20, 22), queue=sys.argv[1])
            r.get(timeout=30)
            print(r.id)
            """, AzureInteropFixture.CeleriacQueue);
        string id = output.Trim();

        BlobClient blob = new BlobServiceClient(fx.Azurite.ConnectionString).GetBlobContainerClient("celery").GetBlobClient(KeyValueResultBackend.TaskKeyPrefix + id);
        using JsonDocument stored = JsonDocument.Parse((await blob.DownloadContentAsync(Ct)).Value.Content.ToMemory());

        Assert.Equal(("SUCCESS", 42, id), (stored.RootElement.GetProperty("status").GetString(), stored.RootElement.GetProperty("result").GetInt32(), stored.RootElement.GetProperty("task_id").GetString()));
    }

    [Fact]
    public async Task Chord_FromPythonClient_CeleriacWorkerJoinsItByChordUnlock()
    {
        // Celery's client joins a chord on this store with celery.chord_unlock (no incr): the Celeriac worker runs the
        // header, the unlock task (retried until the header is ready) and the body.
        string output = await fx.RunPythonAsync("""
            import sys
            from celery import chord
            from interop_tasks import add, xsum
            from interop_client import report
            q = sys.argv[1]
            r = chord([add.s(i, i).set(queue=q) for i in range(4)], xsum.s().set(queue=q)).apply_async()
            report([r], timeout=30)
            """, AzureInteropFixture.CeleriacQueue);

        Assert.Equal("12", PythonOutcome.ParseList(output)[0].ValueJson);
    }

    [Fact]
    public async Task Chord_FromCeleriacClient_PythonWorkerJoinsItByChordUnlock()
    {
        // As Celery's client on this store, Celeriac's sends celery.chord_unlock with the chord; the Python worker runs it.
        CeleriacTask add = fx.Client.Signature("tasks.add");
        CeleriacTask xsum = fx.Client.Signature("tasks.xsum");

        // The body's queue is named: the Python worker's default queue is Celery's 'celery', where it would send it otherwise.
        AsyncResult result = await global::Celeriac.Canvas.Chord([add.S(1, 2), add.S(3, 4), add.S(5, 6)], xsum.S().SetQueue(AzureInteropFixture.PythonQueue)).ApplyAsync(ct: Ct);

        TaskResultMeta meta;
        try
        {
            meta = await result.WaitAsync(s_wait, Ct);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\nThe Python worker's log:\n" + fx.PythonWorker.Log, e);
        }

        Assert.Equal((TaskStates.Success, "21"), (meta.Status, System.Text.Encoding.UTF8.GetString(meta.Result.Span)));
        Assert.Contains("celery.chord_unlock", fx.PythonWorker.Log, StringComparison.Ordinal);
    }
}
