using System.Text;
using Celeriac.Protocol;
using Celeriac.Tests.Support;
using Celeriac.Transport;

namespace Celeriac.Tests.Security;

/// <summary>
/// A worker with signing on runs what a trusted sender signed, and refuses the rest (unsigned, tampered, signed by a
/// stranger) with one log line, no run and no result, while it goes on working; a worker without signing says what a
/// signed message is instead of a bare content-type error.
/// </summary>
public sealed class SignedWorkerTests(MessageSignerTests.Keys keys) : IClassFixture<MessageSignerTests.Keys>
{
    private const int RefusedEvent = 190;
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);

    private SigningKeys K => keys.Value;

    private CeleriacApp SignedApp(Identity who, string broker) => new(new CeleriacOptions
    {
        BrokerUrl = broker,
        Concurrency = 2,
        Security = { Key = who.KeyPath, Certificate = who.CertificatePath, CertStore = K.Store },
    });

    [Fact]
    public async Task SignedCall_FromATrustedSender_Runs()
    {
        string broker = "memory://" + Guid.NewGuid().ToString("N");
        await using CeleriacApp workerApp = SignedApp(K.Alice, broker);
        var calls = 0;
        workerApp.Task("tasks.add", (int x, int y) => { Interlocked.Increment(ref calls); return x + y; });
        await using RunningWorker worker = await RunningWorker.StartAsync(workerApp);
        await using CeleriacApp client = SignedApp(K.Bob, broker);

        AsyncResult result = await client.SendTaskAsync("tasks.add", [2, 3], ct: TestContext.Current.CancellationToken);

        Assert.True(client.SigningEnabled);
        Assert.Equal(5, await result.GetAsync<int>(s_wait, TestContext.Current.CancellationToken));
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task RemoteControl_SignedBothWays_UnsignedAndStrangersGetNoAnswer_AndAreLogged()
    {
        const int RefusedControlEvent = 191;
        string broker = "memory://" + Guid.NewGuid().ToString("N");
        var logs = new CollectingLoggerFactory();
        await using CeleriacApp workerApp = SignedApp(K.Alice, broker);
        workerApp.Options.LoggerFactory = logs;
        await using RunningWorker worker = await RunningWorker.StartAsync(workerApp);
        CancellationToken ct = TestContext.Current.CancellationToken;
        var options = new Control.ControlOptions { Reply = true, Timeout = TimeSpan.FromSeconds(2) };

        await using CeleriacApp signed = SignedApp(K.Bob, broker);
        await using CeleriacApp unsigned = new(new CeleriacOptions { BrokerUrl = broker });
        await using CeleriacApp stranger = SignedApp(K.Mallory, broker);

        // Each refusal is logged by the worker once it has read the request, so both counts prove the request arrived.
        Assert.Single(await signed.Control.PingAsync(options, ct));
        Assert.Empty(await unsigned.Control.PingAsync(options, ct));
        Assert.Empty(await stranger.Control.PingAsync(options, ct));
        Assert.Equal(2, logs.Count(RefusedControlEvent));
        Assert.Single(await signed.Control.PingAsync(options, ct));
    }

    [Fact]
    public async Task RetryAndChain_TheWorkersOwnMessagesAreSignedToo_AndRun()
    {
        string broker = "memory://" + Guid.NewGuid().ToString("N");
        var logs = new CollectingLoggerFactory();
        await using CeleriacApp app = SignedApp(K.Alice, broker);
        app.Options.LoggerFactory = logs;
        app.Task("tasks.flaky", async (int x, TaskContext context) =>
            context.Retries < 1 ? throw await context.RetryAsync(countdown: TimeSpan.FromMilliseconds(300)) : x * 10);
        app.Task("tasks.add", (int x, int y) => x + y);
        await using RunningWorker worker = await RunningWorker.StartAsync(app);
        CancellationToken ct = TestContext.Current.CancellationToken;

        AsyncResult retried = await app.SendTaskAsync("tasks.flaky", [4], ct: ct);
        CeleriacTask add = app.Signature("tasks.add");
        AsyncResult chained = await app.ApplyAsync(add.S(1, 2) | add.S(10), ct: ct);

        Assert.Equal(40, await retried.GetAsync<int>(s_wait, ct));
        Assert.Equal(13, await chained.GetAsync<int>(s_wait, ct));
        Assert.Equal(0, logs.Count(RefusedEvent));
    }

    [Fact]
    public async Task UnsignedTamperedAndStrangers_AreRefusedWithOneLineEach_NotRun_NoResult()
    {
        string broker = "memory://" + Guid.NewGuid().ToString("N");
        var logs = new CollectingLoggerFactory();
        await using CeleriacApp workerApp = SignedApp(K.Alice, broker);
        workerApp.Options.LoggerFactory = logs;

        // One slot, so that messages are checked in the order they came and the last one's result proves the others read.
        workerApp.Options.Concurrency = 1;
        var ran = new System.Collections.Concurrent.ConcurrentBag<int>();
        workerApp.Task("tasks.add", (int x, int y) => { ran.Add(x); return x + y; });
        await using RunningWorker worker = await RunningWorker.StartAsync(workerApp);
        await using CeleriacApp unsigned = new(new CeleriacOptions { BrokerUrl = broker });
        await using CeleriacApp mallory = new(new CeleriacOptions
        {
            BrokerUrl = broker,
            Security = { Key = K.Mallory.KeyPath, Certificate = K.Mallory.CertificatePath, CertStore = K.Store },
        });
        ITransport transport = workerApp.Transport;
        CancellationToken ct = TestContext.Current.CancellationToken;

        // Unsigned: a plain Celeriac client on the same broker.
        AsyncResult plain = await unsigned.SendTaskAsync("tasks.add", [100, 1], ct: ct);

        // Tampered: alice's message with its arguments changed after signing.
        TransportMessage good = workerApp.BuildMessage("tasks.add", [200, 1], null, null, out string queue);
        byte[] raw = Convert.FromBase64String(Encoding.ASCII.GetString(good.Body.Span));
        int at = raw.AsSpan().IndexOf("[[200"u8);
        raw[at + 2] = (byte)'9';
        await transport.PublishAsync("", queue, [good with { Body = Encoding.ASCII.GetBytes(Convert.ToBase64String(raw)) }], ct);

        // Signed by a key whose certificate is not trusted.
        AsyncResult stranger = await mallory.SendTaskAsync("tasks.add", [300, 1], ct: ct);

        // Then a good one: when it has run, the worker has read the three before it (one queue, in order).
        AsyncResult last = await workerApp.SendTaskAsync("tasks.add", [1, 1], ct: ct);
        Assert.Equal(2, await last.GetAsync<int>(s_wait, ct));

        LogEntry[] refused = [.. logs.Entries.Where(e => e.EventId.Id == RefusedEvent)];
        Assert.Equal(3, refused.Length);
        Assert.Contains(refused, e => e.Message.Contains($"[{plain.Id}]", StringComparison.Ordinal) && e.Message.Contains("unsigned message", StringComparison.Ordinal));
        Assert.Contains(refused, e => e.Message.Contains($"[{good.CorrelationId}]", StringComparison.Ordinal) && e.Message.Contains("Bad signature", StringComparison.Ordinal));
        Assert.Contains(refused, e => e.Message.Contains($"[{stranger.Id}]", StringComparison.Ordinal) && e.Message.Contains("Unknown certificate: 'mallory", StringComparison.Ordinal));
        Assert.Equal([1], ran.ToArray());
        foreach (string id in new[] { plain.Id, good.CorrelationId!, stranger.Id })
        {
            Assert.Null(await workerApp.ResultBackend.GetAsync(id, ct));
        }

        Assert.Equal(0, await transport.GetQueueLengthAsync(queue, ct));
        Assert.False(worker.Run.IsCompleted, "the worker stopped");
    }

    [Fact]
    public async Task SignedMessage_ToAWorkerWithoutSigning_FailsSayingSigningIsNotSetUp()
    {
        string broker = "memory://" + Guid.NewGuid().ToString("N");
        await using CeleriacApp workerApp = new(new CeleriacOptions { BrokerUrl = broker, Concurrency = 1 });
        workerApp.Task("tasks.add", (int x, int y) => x + y);
        await using RunningWorker worker = await RunningWorker.StartAsync(workerApp);
        await using CeleriacApp client = SignedApp(K.Alice, broker);

        AsyncResult result = await client.SendTaskAsync("tasks.add", [2, 3], ct: TestContext.Current.CancellationToken);

        TaskFailedException error = await Assert.ThrowsAsync<TaskFailedException>(() => result.GetAsync<int>(s_wait, TestContext.Current.CancellationToken));
        Assert.Contains("message signing is not set up on this worker", error.RemoteMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Setup_WithAMissingSetting_SaysWhichThreeAreNeeded()
    {
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://x", Security = { Key = K.Alice.KeyPath } });

        CeleriacConfigurationException error = Assert.Throws<CeleriacConfigurationException>(() => app.SetupSecurity());

        Assert.Contains("security_key, security_certificate and security_cert_store", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Setup_AStoreThatIsNotACertificate_NamesTheFile()
    {
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = "memory://x" });

        CeleriacConfigurationException error = Assert.Throws<CeleriacConfigurationException>(() =>
            app.SetupSecurity(K.Alice.KeyPath, K.Alice.CertificatePath, K.Alice.KeyPath));

        Assert.Contains($"Invalid certificate: {K.Alice.KeyPath}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Settings_FromTheEnvironment_TurnSigningOn()
    {
        var options = new CeleriacOptions { BrokerUrl = "memory://x" };
        var env = new Dictionary<string, string>
        {
            ["CELERIAC_SECURITY_KEY"] = K.Alice.KeyPath,
            ["CELERIAC_SECURITY_CERTIFICATE"] = K.Alice.CertificatePath,
            ["CELERIAC_SECURITY_CERT_STORE"] = K.Store + "/*.pem",
            ["CELERIAC_SECURITY_DIGEST"] = "sha512",
        };

        CeleriacSettings.ApplyEnvironment(options, env.GetValueOrDefault);

        Assert.Equal(K.Store + "/*.pem", options.Security.CertStore);
        Assert.True(new CeleriacApp(options).SigningEnabled);
    }
}
