using System.Text.Json;
using Celeriac.Worker;

namespace Celeriac.InteropTests;

/// <summary>
/// Celery's filesystem result backend (<c>file:///dir</c>) shared with real Python Celery 5.2: each side reads
/// the other's results, states and errors.
/// </summary>
public sealed class FileSystemBackendInteropTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-fs-interop-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string ReadScript = """
        import json, sys
        from celery import Celery
        app = Celery('interop', broker='memory://', backend='file://' + sys.argv[1])
        out = {}
        for task_id in sys.argv[2:]:
            r = app.AsyncResult(task_id)
            entry = {'state': r.state}
            try:
                value = r.get(timeout=10, propagate=True)
                entry['value'] = value
                entry['type'] = type(value).__name__
            except Exception as e:
                entry['exc_type'] = type(e).__name__
                entry['exc_message'] = str(e)
            out[task_id] = entry
        print(json.dumps(out))
        """;

    [Fact]
    public async Task PythonCelery_ReadsResultsCeleriacStored_ValuesTypesAndErrors()
    {
        await using var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = "memory://" + Guid.NewGuid().ToString("N"),
            ResultBackend = "file://" + _dir,
            Concurrency = 2,
        });
        app.Task("tasks.add", (long x, long y) => x + y);
        app.Task("tasks.echo", (JsonElement value) => value);
        app.Task("tasks.fail", string (string message) => throw new InvalidOperationException(message));
        using var stop = new CancellationTokenSource();
        var worker = new CeleriacWorker(app);
        Task run = worker.RunAsync(stop.Token);

        AsyncResult add = await app.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
        AsyncResult big = await app.SendTaskAsync("tasks.echo", [JsonDocument.Parse("123456789012345678901234567890").RootElement], ct: Ct);
        AsyncResult real = await app.SendTaskAsync("tasks.echo", [2.0], ct: Ct);
        AsyncResult nested = await app.SendTaskAsync("tasks.echo", [JsonDocument.Parse("""{"k": [1, "ü", null, true]}""").RootElement], ct: Ct);
        AsyncResult fail = await app.SendTaskAsync("tasks.fail", ["boom"], ct: Ct);
        AsyncResult badArgs = await app.SendTaskAsync("tasks.add", ["a"], ct: Ct);
        foreach (AsyncResult r in (AsyncResult[])[add, big, real, nested, fail, badArgs])
        {
            await r.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        }

        string output = await PythonCelery.RunAsync(ReadScript, [_dir, add.Id, big.Id, real.Id, nested.Id, fail.Id, badArgs.Id]);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement seen = doc.RootElement;

        Assert.Equal("SUCCESS", seen.GetProperty(add.Id).GetProperty("state").GetString());
        Assert.Equal(5, seen.GetProperty(add.Id).GetProperty("value").GetInt32());
        Assert.Equal("int", seen.GetProperty(big.Id).GetProperty("type").GetString());
        Assert.Equal("123456789012345678901234567890", seen.GetProperty(big.Id).GetProperty("value").GetRawText());
        Assert.Equal("float", seen.GetProperty(real.Id).GetProperty("type").GetString());
        Assert.Equal("dict", seen.GetProperty(nested.Id).GetProperty("type").GetString());
        Assert.Equal("ü", seen.GetProperty(nested.Id).GetProperty("value").GetProperty("k")[1].GetString());
        Assert.Equal("FAILURE", seen.GetProperty(fail.Id).GetProperty("state").GetString());
        Assert.Equal("InvalidOperationException", seen.GetProperty(fail.Id).GetProperty("exc_type").GetString());
        Assert.Equal("boom", seen.GetProperty(fail.Id).GetProperty("exc_message").GetString());
        Assert.Equal("TypeError", seen.GetProperty(badArgs.Id).GetProperty("exc_type").GetString());
        Assert.Contains("'x'", seen.GetProperty(badArgs.Id).GetProperty("exc_message").GetString(), StringComparison.Ordinal);

        stop.Cancel();
        await run;
    }

    private const string WriteScript = """
        import sys
        from celery import Celery
        app = Celery('interop', broker='memory://', backend='file://' + sys.argv[1])
        b = app.backend
        b.mark_as_done(sys.argv[2], {'a': [1, 2.5, 123456789012345678901234567890], 's': 'h\u00e9llo'})
        try:
            raise ValueError('bad value')
        except ValueError as e:
            b.mark_as_failure(sys.argv[3], e)
        b.mark_as_started(sys.argv[4], pid=42, hostname='py@host')
        """;

    [Fact]
    public async Task Celeriac_ReadsResultsPythonCeleryStored_ValuesStatesAndErrors()
    {
        string ok = Guid.NewGuid().ToString(), failed = Guid.NewGuid().ToString(), started = Guid.NewGuid().ToString();
        await PythonCelery.RunAsync(WriteScript, [_dir, ok, failed, started]);
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://", ResultBackend = "file://" + _dir });

        JsonElement value = await app.AsyncResult(ok).GetAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal("[1,2.5,123456789012345678901234567890]", JsonSerializer.Serialize(value.GetProperty("a")));
        Assert.Equal("héllo", value.GetProperty("s").GetString());

        var error = await Assert.ThrowsAsync<TaskFailedException>(() => app.AsyncResult(failed).GetAsync<int>(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
        Assert.Equal(("ValueError", "builtins", "bad value"), (error.ExceptionType, error.ExceptionModule, error.RemoteMessage));

        Assert.Equal(TaskStates.Started, await app.AsyncResult(started).GetStateAsync(TestContext.Current.CancellationToken));
        Assert.Equal(TaskStates.Pending, await app.AsyncResult(Guid.NewGuid().ToString()).GetStateAsync(TestContext.Current.CancellationToken));
    }
}
