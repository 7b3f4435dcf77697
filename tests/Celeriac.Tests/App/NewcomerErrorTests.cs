using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Celeriac.Tests.Support;
using Microsoft.Extensions.Logging;

namespace Celeriac.Tests.App;

/// <summary>What a new user sees when something is wrong: each error names what went wrong and what to do (issue 18, part 8).</summary>
public sealed class NewcomerErrorTests(ITestOutputHelper output)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A loopback port nobody listens on: bound, read, and closed again.</summary>
    internal static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact]
    public async Task DelayAsync_RedisNotListening_ThrowsBrokerUnreachableWithinTimeoutNamingBrokerWithoutPassword()
    {
        int port = ClosedPort();
        var logs = new CollectingLoggerFactory();
        await using var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = $"redis://:s3cretpw@127.0.0.1:{port}/0",
            BrokerConnectTimeout = TimeSpan.FromSeconds(1),
            LoggerFactory = logs,
        });
        CeleriacTask add = app.Signature("tasks.add");

        var clock = Stopwatch.StartNew();
        BrokerUnreachableException error = await Assert.ThrowsAsync<BrokerUnreachableException>(() => add.DelayAsync(2, 3, Ct));
        TimeSpan took = clock.Elapsed;
        output.WriteLine($"Redis on a closed port: BrokerUnreachableException after {took.TotalMilliseconds:F0} ms (timeout 1 s): {error.Message}");

        Assert.True(took < TimeSpan.FromSeconds(1) + TimeSpan.FromSeconds(3), $"took {took}");
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cretpw", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cretpw", error.Url, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(1), error.Timeout);
        Assert.NotNull(error.InnerException);
        Assert.IsAssignableFrom<CeleriacException>(error);

        LogEntry[] lines = [.. logs.Entries.Where(e => e.Level >= LogLevel.Warning && e.Message.Contains($"127.0.0.1:{port}", StringComparison.Ordinal))];
        Assert.Single(lines);
        Assert.DoesNotContain("s3cretpw", lines[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DelayAsync_RealRedisStopped_ThrowsBrokerUnreachableWithinTimeout()
    {
        await using Celeriac.TestServers.RedisServer redis = await Celeriac.TestServers.RedisServer.StartAsync(Ct);
        string url = redis.Url(3);
        await redis.StopAsync();
        Assert.False(redis.IsRunning);
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = url, BrokerConnectTimeout = TimeSpan.FromSeconds(1) });

        var clock = Stopwatch.StartNew();
        BrokerUnreachableException error = await Assert.ThrowsAsync<BrokerUnreachableException>(() => app.Signature("tasks.add").DelayAsync(2, 3, Ct));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
        Assert.Contains($"127.0.0.1:{redis.Port}", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("RabbitMQ", "amqp://guest:s3cretpw@127.0.0.1:{0}//")]
    [InlineData("PostgreSQL", "postgresql://celeriac:s3cretpw@127.0.0.1:{0}/celeriac")]
    public async Task DelayAsync_BrokerNotListening_ThrowsBrokerUnreachableNamingBrokerWithoutPassword(string broker, string urlFormat)
    {
        int port = ClosedPort();
        var logs = new CollectingLoggerFactory();
        await using var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = string.Format(System.Globalization.CultureInfo.InvariantCulture, urlFormat, port),
            ResultBackend = "memory://",
            BrokerConnectTimeout = TimeSpan.FromSeconds(1),
            LoggerFactory = logs,
        });

        var clock = Stopwatch.StartNew();
        BrokerUnreachableException error = await Assert.ThrowsAsync<BrokerUnreachableException>(() => app.Signature("tasks.add").DelayAsync(2, 3, Ct));
        TimeSpan took = clock.Elapsed;
        output.WriteLine($"{broker} on a closed port: BrokerUnreachableException after {took.TotalMilliseconds:F0} ms (timeout 1 s): {error.Message}");

        Assert.True(took < TimeSpan.FromSeconds(4), $"took {took}");
        Assert.Contains($"127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cretpw", error.Message, StringComparison.Ordinal);
        Assert.NotNull(error.InnerException);
        LogEntry line = Assert.Single(logs.Entries, e => e.Level >= LogLevel.Warning && e.Message.Contains($"127.0.0.1:{port}", StringComparison.Ordinal));
        Assert.DoesNotContain("s3cretpw", line.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DisposedApp_SendOrConnectionAccess_ThrowsObjectDisposed()
    {
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = $"memory://{Guid.NewGuid():N}" });
        CeleriacTask add = app.Task("tasks.add", (int x, int y) => x + y);
        await add.DelayAsync(1, 2, Ct);
        await app.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => add.DelayAsync(2, 3, Ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => app.SendTaskAsync("tasks.add", [2, 3], ct: Ct));
        Assert.Throws<ObjectDisposedException>(() => app.Transport);
        Assert.Throws<ObjectDisposedException>(() => app.ResultBackend);
        Assert.Throws<ObjectDisposedException>(() => app.AsyncResult("some-id"));
    }

    [Theory]
    [InlineData("sqllite:///celeriac.db", "sqlite://")]
    [InlineData("reddis://127.0.0.1:6379/0", "redis://")]
    [InlineData("amqb://guest:guest@127.0.0.1//", "amqp://")]
    public async Task UnknownScheme_NearMiss_SuggestsKnownSchemeAndListsPackages(string url, string suggestion)
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = url });

        var error = Assert.Throws<CeleriacConfigurationException>(() => app.Transport);

        Assert.Contains($"Did you mean '{suggestion}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("memory:// (built in)", error.Message, StringComparison.Ordinal);
        Assert.Contains("sqlite:// (Celeriac.Sqlite)", error.Message, StringComparison.Ordinal);
        Assert.Contains("(Celeriac.Redis)", error.Message, StringComparison.Ordinal);
        Assert.Contains("(Celeriac.RabbitMQ)", error.Message, StringComparison.Ordinal);
        Assert.Contains("(Celeriac.PostgreSql)", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("guest:guest", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownScheme_FarFromAny_ListsSchemesWithoutGuessing()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "kafka://127.0.0.1:9092" });

        var error = Assert.Throws<CeleriacConfigurationException>(() => app.Transport);

        Assert.DoesNotContain("Did you mean", error.Message, StringComparison.Ordinal);
        Assert.Contains("Unknown broker URL scheme 'kafka://'", error.Message, StringComparison.Ordinal);
        Assert.Contains("redis://", error.Message, StringComparison.Ordinal);
        // A broker's list names brokers only: a result-backend-only scheme cannot stand there.
        Assert.DoesNotContain("s3://", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgresql://u:secret@127.0.0.1/celery", "'db+postgresql://' with the same address")]
    [InlineData("amqp://guest:secret@127.0.0.1//", "'rpc://'")]
    public async Task ResultBackend_ABrokerOnlyScheme_SaysWhatToUseInstead_AndListsResultBackendsOnly(string url, string instead)
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = $"memory://{Guid.NewGuid():N}", ResultBackend = url });

        var error = Assert.Throws<CeleriacConfigurationException>(() => app.ResultBackend);

        Assert.Contains($"is a broker's scheme, not a result backend's: use {instead}", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Did you mean", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error.Message, StringComparison.Ordinal);
        // The list names what can stand there: result backends, not the brokers that are not also one.
        string known = error.Message[error.Message.IndexOf("Known schemes:", StringComparison.Ordinal)..];
        Assert.Contains("db+postgresql://", known, StringComparison.Ordinal);
        Assert.Contains("rpc://", known, StringComparison.Ordinal);
        Assert.DoesNotContain(" postgresql://", known, StringComparison.Ordinal);
        Assert.DoesNotContain("amqp://", known, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetAsyncInt_OnStringResult_ThrowsResultTypeExceptionNamingTaskIdTypeAndJson()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = $"memory://{Guid.NewGuid():N}" });
        AsyncResult sent = await app.SendTaskAsync("tasks.greet", ["world"], ct: Ct);
        await app.ResultBackend.StoreAsync(new TaskResultMeta { TaskId = sent.Id, Status = TaskStates.Success, Result = Encoding.UTF8.GetBytes("\"hello world\"") }, Ct);

        ResultTypeException error = await Assert.ThrowsAsync<ResultTypeException>(() => sent.GetAsync<int>(TimeSpan.FromSeconds(5), Ct));

        Assert.Contains("tasks.greet", error.Message, StringComparison.Ordinal);
        Assert.Contains(sent.Id, error.Message, StringComparison.Ordinal);
        Assert.Contains("Int32", error.Message, StringComparison.Ordinal);
        Assert.Contains("\"hello world\"", error.Message, StringComparison.Ordinal);
        Assert.Equal(typeof(int), error.RequestedType);
        Assert.IsType<System.Text.Json.JsonException>(error.InnerException, exactMatch: false);
    }

    [Fact]
    public async Task GetAsync_LongResultOfWrongType_MessageShowsAtMost200CharactersOfJson()
    {
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = $"memory://{Guid.NewGuid():N}" });
        string json = "\"" + new string('x', 1000) + "\"";
        await app.ResultBackend.StoreAsync(new TaskResultMeta { TaskId = "t-long", Status = TaskStates.Success, Result = Encoding.UTF8.GetBytes(json) }, Ct);

        ResultTypeException error = await Assert.ThrowsAsync<ResultTypeException>(() => app.AsyncResult("t-long").GetAsync<int>(TimeSpan.FromSeconds(5), Ct));

        Assert.DoesNotContain(new string('x', 201), error.Message, StringComparison.Ordinal);
        Assert.Equal(json, error.Json);
    }

    [Fact]
    public void DelayAsync_TokenAmongParamsArguments_IsRefusedNotSent()
    {
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = $"memory://{Guid.NewGuid():N}" });
        CeleriacTask many = app.Signature("tasks.many");

        var error = Assert.Throws<ArgumentException>(() => { _ = many.DelayAsync(1, 2, 3, 4, 5, Ct); });

        Assert.Contains("CancellationToken", error.Message, StringComparison.Ordinal);
    }
}

/// <summary>A worker started before its broker waits for it, as Celery's <c>broker_connection_retry_on_startup</c>.</summary>
public sealed class WorkerStartupRetryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Worker_BrokerNotUpYet_TriesAgainWithALinePerTry_AndAStopEndsIt()
    {
        int port = NewcomerErrorTests.ClosedPort();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 3, 0, 0, TimeSpan.Zero));
        var logs = new CollectingLoggerFactory();
        await using var app = new CeleriacApp(new CeleriacOptions
        {
            BrokerUrl = $"amqp://guest:s3cretpw@127.0.0.1:{port}//",
            ResultBackend = "memory://",
            BrokerConnectTimeout = TimeSpan.FromSeconds(1),
            TimeProvider = time,
            LoggerFactory = logs,
        });
        var worker = new Celeriac.Worker.CeleriacWorker(app);
        using var stop = new CancellationTokenSource();
        Task running = worker.RunAsync(stop.Token);

        string[] tries = [];
        for (int attempt = 1; attempt <= 2; attempt++)
        {
            // Each try fails at once (nothing listens); the next one comes only when its 2 s (then 4 s) have passed.
            string expected = $"({attempt}/100)";
            bool seen = await Poll.UntilAsync(() => logs.Entries.Any(e => e.Message.Contains(expected, StringComparison.Ordinal)), TimeSpan.FromSeconds(20));
            tries = [.. logs.Entries.Where(e => e.Message.Contains("Cannot connect", StringComparison.Ordinal)).Select(e => e.Message)];
            Assert.True(seen, $"no try {attempt}: {string.Join(" | ", tries)}");
            Assert.False(running.IsCompleted, "the worker gave up instead of waiting for its broker");
            time.Advance(TimeSpan.FromSeconds(2 * attempt));
        }

        Assert.Contains($"127.0.0.1:{port}", tries[0], StringComparison.Ordinal);
        Assert.Contains("Trying again in 2.00 seconds... (1/100)", tries[0], StringComparison.Ordinal);
        Assert.DoesNotContain("s3cretpw", string.Join(" ", tries), StringComparison.Ordinal);
        Assert.False(worker.Ready.IsCompleted);

        await stop.CancelAsync();
        Assert.Same(running, await Task.WhenAny(running, Task.Delay(TimeSpan.FromSeconds(20), Ct)));
        await running;
    }
}
