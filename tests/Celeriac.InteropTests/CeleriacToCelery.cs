using System.Diagnostics;
using System.Numerics;

namespace Celeriac.InteropTests;

/// <summary>
/// What a Celeriac client observes of tasks it sends to a real Celery 5.2 worker running <c>interop_tasks.py</c>,
/// whatever the broker and result backend (Redis, RabbitMQ with rpc://): the checks both interop suites run.
/// </summary>
internal static class CeleriacToCelery
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// What Celeriac sends, and the JSON Python's echo returns for it: a float stays a float (2.0), a big integer an
    /// exact int, text any Unicode.
    /// </summary>
    private static readonly (object? Value, string Expected)[] s_echoed =
    [
        ("héllo", "\"héllo\""),
        (2.0, "2.0"),
        (BigInteger.Pow(2, 64) + 1, "18446744073709551617"),
        (-BigInteger.Pow(2, 70), "-1180591620717411303424"),
        (new List<object?> { 1L, "a", null, 2.5, new List<object?> { true, false } }, """[1,"a",null,2.5,[true,false]]"""),
        (new Dictionary<string, object?> { ["k"] = new List<object?> { 1L, new Dictionary<string, object?> { ["n"] = null } }, ["ü"] = "x", ["f"] = 0.1 }, """{"k":[1,{"n":null}],"ü":"x","f":0.1}"""),
        (null, "null"),
        ("żółć 東京 🎉", "\"żółć 東京 🎉\""),
        (true, "true"),
        (0L, "0"),
        (-7L, "-7"),
        (1e300, "1e+300"),
        ("", "\"\""),
    ];

    /// <summary>Positional, keyword and mixed arguments: Python binds them by name.</summary>
    public static async Task ArgumentsBoundByPythonAsync(CeleriacApp client)
    {
        AsyncResult positional = await client.SendTaskAsync("tasks.add", [2, 3], ct: Ct);
        AsyncResult keywords = await client.SendTaskAsync("tasks.add", kwargs: new Dictionary<string, object?> { ["x"] = 4, ["y"] = 5 }, ct: Ct);
        AsyncResult mixed = await client.SendTaskAsync("tasks.add", [10], new Dictionary<string, object?> { ["y"] = 7 }, ct: Ct);
        AsyncResult mul = await client.SendTaskAsync("tasks.mul", kwargs: new Dictionary<string, object?> { ["y"] = 6, ["x"] = 7 }, ct: Ct);

        Assert.Equal(5, await positional.GetAsync<long>(s_wait, Ct));
        Assert.Equal(9, await keywords.GetAsync<long>(s_wait, Ct));
        Assert.Equal(17, await mixed.GetAsync<long>(s_wait, Ct));
        Assert.Equal(42, await mul.GetAsync<long>(s_wait, Ct));
    }

    /// <summary>Each value of <see cref="s_echoed"/> comes back from Python's echo as the same JSON; Python adds integers beyond 2^64 exactly.</summary>
    public static async Task ValuesEchoedByPythonAsync(CeleriacApp client)
    {
        var sent = new List<AsyncResult>();
        foreach ((object? value, _) in s_echoed)
        {
            sent.Add(await client.SendTaskAsync("tasks.echo", [value], ct: Ct));
        }

        AsyncResult total = await client.SendTaskAsync("tasks.xsum", [new List<object?> { BigInteger.Pow(2, 64), BigInteger.Pow(2, 64), 1L }], ct: Ct);

        for (int i = 0; i < s_echoed.Length; i++)
        {
            TaskResultMeta meta = await sent[i].WaitAsync(s_wait, Ct);
            Assert.True(meta.Status == TaskStates.Success, $"echo({s_echoed[i].Expected}) ended {meta.Status}: {meta.Exception?.Type}: {meta.Exception?.Message}");
            Assert.Equal(JsonText.Canonical(s_echoed[i].Expected), JsonText.Canonical(meta.Result));
        }

        Assert.Equal("36893488147419103233", JsonText.Canonical((await total.WaitAsync(s_wait, Ct)).Result));
    }

    /// <summary>
    /// A countdown runs after its delay, not before; a task whose expiry has passed when it arrives, or passes while
    /// it waits for its countdown, ends REVOKED ("expired") and never runs; one that has not expired runs.
    /// </summary>
    public static async Task CountdownAndExpiresHonouredByCeleryAsync(CeleriacApp client, PythonWorker worker)
    {
        var clock = Stopwatch.StartNew();
        DateTimeOffset sentAt = TimeProvider.System.GetUtcNow();
        AsyncResult later = await client.SendTaskAsync("tasks.add", [1, 2], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(1.5) }, ct: Ct);
        AsyncResult expired = await client.SendTaskAsync("tasks.add", [3, 4], options: new ApplyOptions { Expires = sentAt - TimeSpan.FromSeconds(5) }, ct: Ct);
        AsyncResult expiresWhileHeld = await client.SendTaskAsync("tasks.add", [5, 5], options: new ApplyOptions { Countdown = TimeSpan.FromSeconds(3), ExpiresIn = TimeSpan.FromSeconds(1) }, ct: Ct);
        AsyncResult fresh = await client.SendTaskAsync("tasks.add", [5, 6], options: new ApplyOptions { ExpiresIn = TimeSpan.FromSeconds(60) }, ct: Ct);

        TaskResultMeta laterMeta = await later.WaitAsync(s_wait, Ct);
        TimeSpan laterSeen = clock.Elapsed;
        Assert.Equal((TaskStates.Success, "3"), (laterMeta.Status, JsonText.Canonical(laterMeta.Result)));

        // Never before its countdown. The upper bound is loose on purpose: a Celery 5.2 worker on RabbitMQ at times takes
        // its next message only at its 10 s loop tick (seen in its own log as 10 s gaps), twice in one wait at worst.
        Assert.InRange(laterSeen, TimeSpan.FromSeconds(1.5), s_wait);
        if (laterMeta.DateDone is { } done)
        {
            // Backends that store date_done (Redis; not rpc://) say when it ran.
            Assert.InRange(done - sentAt, TimeSpan.FromSeconds(1.5), s_wait);
        }

        foreach (AsyncResult r in (AsyncResult[])[expired, expiresWhileHeld])
        {
            TaskResultMeta meta = await r.WaitAsync(s_wait, Ct);
            Assert.Equal((TaskStates.Revoked, "TaskRevokedError", "expired"), (meta.Status, meta.Exception?.Type, meta.Exception?.Message));
            var revoked = await Assert.ThrowsAsync<TaskFailedException>(() => r.GetAsync<long>(s_wait, Ct));
            Assert.Equal(TaskStates.Revoked, revoked.State);
            await worker.WaitForLogAsync($"Discarding revoked task: tasks.add[{r.Id}]", s_wait);
            Assert.DoesNotContain($"tasks.add[{r.Id}] succeeded", worker.Log, StringComparison.Ordinal);
        }

        Assert.Equal(11, await fresh.GetAsync<long>(s_wait, Ct));
    }

    /// <summary>
    /// An unknown task name: what Celery 5.2.6 really does (worker/consumer/consumer.py on_unknown_task) is log the
    /// error, reject the message (not redelivered) and ALSO store FAILURE with NotRegistered(name), i.e.
    /// {"exc_type": "NotRegistered", "exc_message": ["&lt;name&gt;"], "exc_module": "celery.exceptions"}; the
    /// worker goes on.
    /// </summary>
    public static async Task UnknownTaskStoredAsNotRegisteredAsync(CeleriacApp client, PythonWorker worker)
    {
        string name = "tasks.unknown_" + Guid.NewGuid().ToString("N")[..8];
        AsyncResult unknown = await client.SendTaskAsync(name, [1], ct: Ct);
        AsyncResult after = await client.SendTaskAsync("tasks.add", [20, 22], ct: Ct);

        await worker.WaitForLogAsync($"Received unregistered task of type '{name}'", s_wait);
        await worker.WaitForLogAsync("The message has been ignored and discarded.", s_wait);
        TaskResultMeta meta = await unknown.WaitAsync(s_wait, Ct);
        Assert.Equal((TaskStates.Failure, "NotRegistered", "celery.exceptions", name), (meta.Status, meta.Exception?.Type, meta.Exception?.Module, meta.Exception?.Message));
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => unknown.GetAsync<long>(s_wait, Ct));
        Assert.Equal("NotRegistered", error.ExceptionType);
        Assert.Equal(42, await after.GetAsync<long>(s_wait, Ct));
    }
}
