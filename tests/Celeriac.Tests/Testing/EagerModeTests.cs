using System.Text.Json;
using Celeriac.Results;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Testing;

/// <summary>Eager mode (Celery's task_always_eager): calls run in the caller and their results are already there.</summary>
public sealed class EagerModeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>An eager app whose broker is an unknown scheme: any send that reached a broker would fail loudly.</summary>
    private static CeleriacApp EagerApp(bool propagates = false) => new(new CeleriacOptions
    {
        BrokerUrl = "nowhere://broker",
        ResultBackend = "nowhere://results",
        TaskAlwaysEager = true,
        TaskEagerPropagates = propagates,
    });

    [Fact]
    public async Task DelayAsync_Eager_RunsInTheCallerAndTheResultIsReady()
    {
        await using CeleriacApp app = EagerApp();
        int calls = 0;
        CeleriacTask add = app.Task("tasks.add", (int x, int y) =>
        {
            calls++;
            return x + y;
        });

        AsyncResult result = await add.DelayAsync(2, 3);

        Assert.Equal(1, calls); // ran before DelayAsync returned
        Assert.Equal(TaskStates.Success, await result.GetStateAsync(Ct));
        Assert.Equal(5, await result.GetAsync<int>(TimeSpan.Zero, Ct));
        Assert.Equal(5, await app.AsyncResult(result.Id).GetAsync<int>(TimeSpan.Zero, Ct));
    }

    [Fact]
    public async Task SendTaskAsync_Eager_TypedResultAndKeywordArguments()
    {
        await using CeleriacApp app = EagerApp();
        app.Task("tasks.greet", (string name, string greeting = "hello") => $"{greeting} {name}");

        AsyncResult<string> typed = await ((ICeleriacClient)app).SendTaskAsync<string>("tasks.greet", ["ada"], new Dictionary<string, object?> { ["greeting"] = "hi" }, ct: Ct);

        Assert.Equal("hi ada", await typed.GetAsync(TimeSpan.Zero, Ct));
    }

    [Fact]
    public async Task Failure_Eager_StoredAsFailureAndGetThrowsTaskFailed()
    {
        await using CeleriacApp app = EagerApp();
        CeleriacTask boom = app.Task("tasks.boom", int () => throw new InvalidOperationException("no luck"));

        AsyncResult result = await boom.DelayAsync();

        Assert.Equal(TaskStates.Failure, await result.GetStateAsync(Ct));
        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<int>(TimeSpan.Zero, Ct));
        Assert.Contains("no luck", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failure_EagerPropagates_ThrowsTheTasksOwnException()
    {
        await using CeleriacApp app = EagerApp(propagates: true);
        CeleriacTask boom = app.Task("tasks.boom", int () => throw new InvalidOperationException("no luck"));

        InvalidOperationException error = await Assert.ThrowsAsync<InvalidOperationException>(() => boom.DelayAsync());
        Assert.Equal("no luck", error.Message);
    }

    [Fact]
    public async Task WrongArguments_Eager_FailureNamesTheParameter()
    {
        await using CeleriacApp app = EagerApp();
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);

        AsyncResult result = await add.DelayAsync("two", 3);

        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<int>(TimeSpan.Zero, Ct));
        Assert.Contains("'x'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retry_Eager_RunsAgainAtOnceWithRetriesCounted()
    {
        await using CeleriacApp app = EagerApp();
        var seen = new List<int>();
        CeleriacTask flaky = app.Task("tasks.flaky", async (TaskContext ctx) =>
        {
            seen.Add(ctx.Retries);
            if (ctx.Retries < 2)
            {
                throw await ctx.RetryAsync(new TimeoutException("later"), countdown: TimeSpan.FromHours(1));
            }

            return "done";
        });
        int retrySignals = 0;
        app.Signals.TaskRetry += (_, _) => retrySignals++;

        AsyncResult result = await flaky.DelayAsync();

        Assert.Equal("done", await result.GetAsync<string>(TimeSpan.Zero, Ct));
        Assert.Equal([0, 1, 2], seen);
        Assert.Equal(2, retrySignals);
    }

    [Fact]
    public async Task Retry_EagerPastMaxRetries_FailsWithTheReason()
    {
        await using CeleriacApp app = EagerApp();
        int runs = 0;
        CeleriacTask flaky = app.Task(
            "tasks.flaky",
            async (TaskContext ctx) =>
            {
                runs++;
                throw await ctx.RetryAsync(new TimeoutException("still down"));
            },
            new TaskOptions { MaxRetries = 2 });

        AsyncResult result = await flaky.DelayAsync();

        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<object>(TimeSpan.Zero, Ct));
        Assert.Contains("still down", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, runs); // the first run and two retries
    }

    [Fact]
    public async Task AutoRetryFor_Eager_RetriesUntilItWorks()
    {
        await using CeleriacApp app = EagerApp();
        int runs = 0;
        CeleriacTask flaky = app.Task(
            "tasks.flaky",
            () => ++runs < 3 ? throw new TimeoutException("down") : runs,
            new TaskOptions { AutoRetryFor = [typeof(TimeoutException)], MaxRetries = 5, DefaultRetryDelay = TimeSpan.FromMinutes(10) });

        AsyncResult result = await flaky.DelayAsync();

        Assert.Equal(3, await result.GetAsync<int>(TimeSpan.Zero, Ct));
    }

    [Fact]
    public async Task Chain_Eager_RunsInOrderPassingEachValueOn()
    {
        await using CeleriacApp app = EagerApp();
        var order = new List<string>();
        CeleriacTask add = app.Task("tasks.add", (int x, int y) =>
        {
            order.Add($"add({x},{y})");
            return x + y;
        });
        CeleriacTask mul = app.Task("tasks.mul", (int x, int y) =>
        {
            order.Add($"mul({x},{y})");
            return x * y;
        });

        AsyncResult result = await app.ApplyAsync(add.S(2, 3) | mul.S(10) | add.S(1), ct: Ct);

        Assert.Equal(51, await result.GetAsync<int>(TimeSpan.Zero, Ct));
        Assert.Equal(["add(2,3)", "mul(5,10)", "add(50,1)"], order);
        Assert.Equal(50, await result.Parent!.GetAsync<int>(TimeSpan.Zero, Ct));
    }

    [Fact]
    public async Task Chain_EagerStepFails_LaterStepsDoNotRun()
    {
        await using CeleriacApp app = EagerApp();
        int after = 0;
        CeleriacTask boom = app.Task("tasks.boom", int (int x) => throw new ArgumentOutOfRangeException(nameof(x)));
        CeleriacTask next = app.Task("tasks.next", (int x) => ++after);
        CeleriacTask one = app.Task("tasks.one", () => 1);

        AsyncResult result = await app.ApplyAsync(one.S() | boom.S() | next.S(), ct: Ct);

        Assert.Equal(TaskStates.Failure, await result.GetStateAsync(Ct));
        Assert.Equal(0, after);
    }

    [Fact]
    public async Task GroupAndChord_Eager_BodyGetsTheHeadersValuesInOrder()
    {
        await using CeleriacApp app = EagerApp();
        CeleriacTask square = app.Task("tasks.square", (int x) => x * x);
        CeleriacTask sum = app.Task("tasks.sum", (int[] xs) => xs.Sum());

        AsyncResult group = await app.ApplyAsync(global::Celeriac.Canvas.Group(square.S(1), square.S(2), square.S(3)), ct: Ct);
        AsyncResult chord = await app.ApplyAsync(global::Celeriac.Canvas.Chord([square.S(1), square.S(2), square.S(3)], sum.S()), ct: Ct);

        Assert.Equal([1, 4, 9], await group.GetAsync<List<int>>(TimeSpan.Zero, Ct) ?? []);
        Assert.Equal(14, await chord.GetAsync<int>(TimeSpan.Zero, Ct));
        GroupResult? restored = await app.RestoreGroupAsync(group.Id, Ct);
        Assert.Equal([1, 4, 9], await restored!.GetAsync<List<int>>(TimeSpan.Zero, Ct) ?? []);
    }

    [Fact]
    public async Task Link_Eager_CallbackGetsTheResult()
    {
        await using CeleriacApp app = EagerApp();
        int? seen = null;
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        app.Task("tasks.record", (int x) => seen = x);

        Signature sig = add.S(4, 5);
        sig.Link(app.Sig("tasks.record")); // Link returns the callback, as Celery's link does

        await app.ApplyAsync(sig, ct: Ct);

        Assert.Equal(9, seen);
    }

    /// <summary>An eager app with a failing task and an old-style (task id) and a new-style (request, exc, traceback) error callback that record what they got.</summary>
    private static (CeleriacApp App, CeleriacTask Boom, List<string> Errbacks) ErrbackApp(bool propagates = false)
    {
        CeleriacApp app = EagerApp(propagates);
        var errbacks = new List<string>();
        CeleriacTask boom = app.Task("tasks.boom", int (int x) => throw new InvalidOperationException("boom " + x));
        app.Task("tasks.old_errback", (string taskId) => errbacks.Add("old:" + taskId));
        app.Task("tasks.new_errback", (JsonElement request, JsonElement exc, string? traceback) =>
            errbacks.Add($"new:{request.GetProperty("id").GetString()}:{exc.GetProperty("exc_type").GetString()}:{exc.GetProperty("exc_message")[0].GetString()}:{traceback?.Contains("boom 7", StringComparison.Ordinal)}"));
        return (app, boom, errbacks);
    }

    [Fact]
    public async Task LinkError_Eager_OldStyleGetsTheTaskIdAndNewStyleTheRequestAndException()
    {
        (CeleriacApp app, CeleriacTask boom, List<string> errbacks) = ErrbackApp();
        await using (app)
        {
            Signature sig = boom.S(7);
            sig.LinkError(app.Sig("tasks.old_errback"));
            sig.LinkError(app.Sig("tasks.new_errback"));

            AsyncResult result = await app.ApplyAsync(sig, ct: Ct);

            Assert.Equal(TaskStates.Failure, await result.GetStateAsync(Ct));
            Assert.Equal(["new:" + result.Id + ":InvalidOperationException:boom 7:True", "old:" + result.Id], errbacks);
        }
    }

    [Fact]
    public async Task LinkError_EagerPropagates_ErrbacksRunBeforeTheTasksExceptionIsThrown()
    {
        (CeleriacApp app, CeleriacTask boom, List<string> errbacks) = ErrbackApp(propagates: true);
        await using (app)
        {
            Signature sig = boom.S(7);
            sig.Id = "boom-1";
            sig.LinkError(app.Sig("tasks.old_errback"));

            InvalidOperationException thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => app.ApplyAsync(sig, ct: Ct));

            Assert.Equal("boom 7", thrown.Message);
            Assert.Equal("old:boom-1", Assert.Single(errbacks));
        }
    }

    [Fact]
    public async Task LinkError_EagerChainStepFails_TheChainsErrbackGetsThatStepsId_AndASucceedingCallDoesNotCallIt()
    {
        (CeleriacApp app, CeleriacTask boom, List<string> errbacks) = ErrbackApp();
        await using (app)
        {
            int? recorded = null;
            CeleriacTask one = app.Task("tasks.one", () => 1);
            CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
            app.Task("tasks.record", (int x) => recorded = x);

            // A succeeding call with both kinds: its callback runs (so callbacks were looked at), its errback does not.
            Signature fine = add.S(2, 3);
            fine.Link(app.Sig("tasks.record"));
            fine.LinkError(app.Sig("tasks.old_errback"));
            await app.ApplyAsync(fine, ct: Ct);
            Assert.Equal(5, recorded);
            Assert.Empty(errbacks);

            Signature chain = (one.S() | boom.S() | add.S(1)).OnError(app.Sig("tasks.old_errback"));
            AsyncResult result = await app.ApplyAsync(chain, ct: Ct);

            // The chain stops at the failed step, whose id the error callback gets, once.
            Assert.Equal(TaskStates.Failure, await result.GetStateAsync(Ct));
            Assert.Equal("old:" + result.Id, Assert.Single(errbacks));
        }
    }

    [Fact]
    public async Task Link_EagerChain_TheChainsCallbackGetsTheLastStepsValue()
    {
        await using CeleriacApp app = EagerApp();
        var seen = new List<int>();
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        app.Task("tasks.record", (int x) => seen.Add(x));

        Signature chain = add.S(1, 2) | add.S(10);
        chain.Link(app.Sig("tasks.record"));
        await app.ApplyAsync(chain, ct: Ct);

        Assert.Equal([13], seen); // the last step's value, once: not each step's
    }

    [Fact]
    public async Task TaskSentFromATask_Eager_RunsAsItsChild()
    {
        await using CeleriacApp app = EagerApp();
        CeleriacTask inner = app.Task("tasks.inner", (int x) => x + 1);
        CeleriacTask outer = app.Task("tasks.outer", async (int x) => await (await inner.DelayAsync(x)).GetAsync<int>(TimeSpan.Zero));

        AsyncResult result = await outer.DelayAsync(41);

        Assert.Equal(42, await result.GetAsync<int>(TimeSpan.Zero, Ct));
        Assert.Single(result.Children);
    }

    [Fact]
    public async Task TaskNotRegisteredHere_Eager_IsSentAsCeleryDoes()
    {
        await using CeleriacApp app = RunningWorker.NewApp(o => o.TaskAlwaysEager = true);

        AsyncResult result = await app.SendTaskAsync("python.only", [1], ct: Ct);

        Assert.Equal(1, await app.Transport.GetQueueLengthAsync("celery", Ct));
        Assert.Equal(TaskStates.Pending, await result.GetStateAsync(Ct));
    }

    [Fact]
    public void Settings_EnvironmentVariables_TurnEagerOn()
    {
        var options = new CeleriacOptions();
        var env = new Dictionary<string, string> { ["CELERIAC_TASK_ALWAYS_EAGER"] = "true", ["CELERIAC_TASK_EAGER_PROPAGATES"] = "1" };

        CeleriacSettings.Apply(options, appSettingsPath: null, environment: k => env.GetValueOrDefault(k));

        Assert.True(options.TaskAlwaysEager);
        Assert.True(options.TaskEagerPropagates);
    }

    public sealed class Greeter
    {
        public string Greeting { get; } = "hello";

        public string Greet(string name) => Greeting + " " + name;
    }

    [Fact]
    public async Task TaskWithAService_Eager_GetsItFromDI()
    {
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddScoped<Greeter>(services);
        await using Microsoft.Extensions.DependencyInjection.ServiceProvider provider = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services);
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "nowhere://", TaskAlwaysEager = true, Services = provider });
        CeleriacTask greet = app.Task("tasks.greet", ([Inject] Greeter greeter, string name) => greeter.Greet(name));

        AsyncResult result = await greet.DelayAsync("ada");

        Assert.Equal("hello ada", await result.GetAsync<string>(TimeSpan.Zero, Ct));
    }
}
