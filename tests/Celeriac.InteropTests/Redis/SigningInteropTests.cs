using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Celeriac.Control;
using Celeriac.Transport;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// Signed messages both ways with Python Celery 5.2 (<c>app.setup_security()</c>, the <c>auth</c> serializer) over a real
/// Redis: a signed Python client's calls run on a signed Celeriac worker process and a signed Celeriac client's on a
/// signed Celery worker; on both sides an unsigned and a tampered message are refused, not run, and logged.
/// </summary>
public sealed class SigningInteropTests(RedisInteropFixture fx) : IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("celeriac-signing-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Databases of their own: with signing on, a worker's and a client's control broadcasts (mingle's hello, inspect) are
    // signed, and a Celery worker without signing that reads one (the fixture's, on its databases) fails on its body
    // and resets its mailbox consumer, after which it was seen to take no more tasks. The tests of a class run one at
    // a time, so they share these.
    private string Broker => fx.Server.Url(12);

    private string Backend => fx.Server.Url(13);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Two senders ("python", "dotnet"), each a self-signed RSA key as Celery's own test makes them; the store trusts both.</summary>
    private (string Key, string Cert, string Store) Keys(string who)
    {
        string store = Path.Join(_dir, "store");
        Directory.CreateDirectory(store);
        foreach (string name in new[] { "python", "dotnet" })
        {
            if (File.Exists(Path.Join(_dir, name + ".key")))
            {
                continue;
            }

            using var key = RSA.Create(2048);
            var request = new CertificateRequest($"CN=celeriac interop {name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            DateTimeOffset now = TimeProvider.System.GetUtcNow();
            using X509Certificate2 cert = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
            File.WriteAllText(Path.Join(_dir, name + ".key"), key.ExportRSAPrivateKeyPem());
            File.WriteAllText(Path.Join(store, name + ".pem"), cert.ExportCertificatePem());
        }

        return (Path.Join(_dir, who + ".key"), Path.Join(store, who + ".pem"), Path.Join(store, "*.pem"));
    }

    private Dictionary<string, string> PythonSigning()
    {
        (string key, string cert, string store) = Keys("python");
        return new(fx.PythonEnvironment)
        {
            ["CELERY_SECURITY_KEY"] = key,
            ["CELERY_SECURITY_CERTIFICATE"] = cert,
            ["CELERY_SECURITY_CERT_STORE"] = store,
            ["CELERY_BROKER_URL"] = Broker,
            ["CELERY_RESULT_BACKEND"] = Backend,
        };
    }

    private CeleriacApp SignedClient()
    {
        (string key, string cert, string store) = Keys("dotnet");
        return fx.NewApp(o =>
        {
            o.BrokerUrl = Broker;
            o.ResultBackend = Backend;
            o.Security.Key = key;
            o.Security.Certificate = cert;
            o.Security.CertStore = store;
        });
    }

    /// <summary>Publishes a copy of a signed message whose arguments were changed after signing.</summary>
    private static async Task<string> PublishTamperedAsync(CeleriacApp signed, string queue, int x)
    {
        TransportMessage message = signed.BuildMessage("tasks.add", [x, 1], null, new ApplyOptions { Queue = queue }, out _);
        byte[] raw = Convert.FromBase64String(Encoding.ASCII.GetString(message.Body.Span));
        int at = raw.AsSpan().IndexOf(Encoding.ASCII.GetBytes($"[[{x}"));
        raw[at + 2] = (byte)(raw[at + 2] == (byte)'9' ? '8' : '9');
        await signed.Transport.PublishAsync("", queue, [message with { Body = Encoding.ASCII.GetBytes(Convert.ToBase64String(raw)) }], Ct);
        return message.CorrelationId!;
    }

    [Fact]
    public async Task PythonSignedClient_ToSignedCeleriacWorker_Runs_UnsignedAndTamperedRefused()
    {
        string queue = "signed.net." + Guid.NewGuid().ToString("N");
        (string key, string cert, string store) = Keys("dotnet");
        var env = new Dictionary<string, string>
        {
            ["CELERIAC_SECURITY_KEY"] = key,
            ["CELERIAC_SECURITY_CERTIFICATE"] = cert,
            ["CELERIAC_SECURITY_CERT_STORE"] = store,
        };
        await using CeleriacWorkerProcess worker = await CeleriacWorkerProcess.StartAsync(_dir, Broker, Backend, queue, 2, "signed-net@localhost", env);
        await using CeleriacApp signed = SignedClient();
        await using CeleriacApp unsigned = fx.NewApp(o => (o.BrokerUrl, o.ResultBackend) = (Broker, Backend));

        // Refused first (one queue, in order), then the signed Python call proves the worker has read them.
        AsyncResult plain = await unsigned.SendTaskAsync("tasks.add", [100, 1], null, new ApplyOptions { Queue = queue }, Ct);
        string tampered = await PublishTamperedAsync(signed, queue, 200);
        string output = await PythonCelery.RunAsync("""
            import sys
            from interop_tasks import add
            from interop_client import report
            report([add.apply_async((2, 3), queue=sys.argv[1])])
            """, PythonSigning(), queue);

        PythonOutcome ran = PythonOutcome.ParseList(output)[0];
        Assert.True(ran.State == "SUCCESS", $"{ran.State}: {ran.ExcType}: {ran.ExcMessage}\n{worker.Log}");
        Assert.Equal("5", ran.ValueJson);
        Assert.Equal(5, await signed.AsyncResult(ran.Id).GetAsync<int>(s_wait, Ct));
        string log = worker.Log;
        Assert.True(log.Contains($"[{plain.Id}]): unsigned message", StringComparison.Ordinal), log);
        Assert.True(log.Contains($"[{tampered}]): Bad signature", StringComparison.Ordinal), log);
        Assert.Null(await signed.ResultBackend.GetAsync(plain.Id, Ct));
        Assert.Null(await signed.ResultBackend.GetAsync(tampered, Ct));
    }

    [Fact]
    public async Task PythonSignedClient_InspectPing_SignedCeleriacWorkerAnswers_UnsignedRequestRefused()
    {
        string queue = "signed.ctl.net." + Guid.NewGuid().ToString("N");
        string node = "signed-ctl-net-" + Guid.NewGuid().ToString("N")[..8] + "@localhost";
        (string key, string cert, string store) = Keys("dotnet");
        var env = new Dictionary<string, string>
        {
            ["CELERIAC_SECURITY_KEY"] = key,
            ["CELERIAC_SECURITY_CERTIFICATE"] = cert,
            ["CELERIAC_SECURITY_CERT_STORE"] = store,
        };
        await using CeleriacWorkerProcess worker = await CeleriacWorkerProcess.StartAsync(_dir, Broker, Backend, queue, 1, node, env);

        // Celery signs its remote-control messages when setup_security() is on (its task serializer, auth), and accepts
        // only signed replies: the Celeriac worker must verify the request and sign its reply.
        string output = await PythonCelery.RunAsync("""
            import json, sys
            from interop_tasks import app
            print(json.dumps(app.control.inspect(destination=[sys.argv[1]], timeout=10).ping()))
            """, PythonSigning(), node);
        Assert.True(output.Contains($"\"{node}\": {{\"ok\": \"pong\"}}", StringComparison.Ordinal), output + "\n" + worker.Log);

        // An unsigned ping gets no answer: the worker refuses it, and says so.
        await using CeleriacApp unsigned = fx.NewApp(o => (o.BrokerUrl, o.ResultBackend) = (Broker, Backend));
        IReadOnlyDictionary<string, ControlReply> none = await unsigned.Control.PingAsync(new ControlOptions { Destination = [node], Reply = true, Timeout = TimeSpan.FromSeconds(2) }, Ct);
        Assert.Empty(none);
        Assert.True(await PollAsync(() => worker.Log.Contains("Refused a remote-control request: unsigned message", StringComparison.Ordinal)), worker.Log);
    }

    [Fact]
    public async Task CeleriacSignedClient_PingAndRateLimit_SignedCeleryWorkerAnswersAndApplies()
    {
        string queue = "signed.ctl.py." + Guid.NewGuid().ToString("N");
        string node = "signed-ctl-py-" + Guid.NewGuid().ToString("N")[..8] + "@localhost";
        await using PythonWorker worker = await PythonWorker.StartAsync(Broker, Backend, queue, concurrency: 1, nodeName: node,
            pool: "solo", environment: PythonSigning());
        await using CeleriacApp signed = SignedClient();

        IReadOnlyDictionary<string, ControlReply> pongs = await signed.Control.PingAsync(new ControlOptions { Destination = [node], Reply = true, Timeout = TimeSpan.FromSeconds(10) }, Ct);
        Assert.True(pongs.ContainsKey(node), string.Join(", ", pongs.Keys) + "\n" + worker.Log);

        // A command that changes the worker: Celery's reply, and the change seen by Celery's own inspect.
        await signed.SetRateLimitAsync("tasks.add", "7/m", [node], Ct);
        string output = await PythonCelery.RunAsync("""
            import json, sys
            from interop_tasks import app
            print(json.dumps(app.control.inspect(destination=[sys.argv[1]], timeout=10).registered("rate_limit")))
            """, PythonSigning(), node);
        Assert.True(output.Contains("tasks.add [rate_limit=7/m]", StringComparison.Ordinal), output + "\n" + worker.Log);
    }

    private static async Task<bool> PollAsync(Func<bool> condition)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > s_wait)
            {
                return false;
            }

            await Task.Delay(50, Ct);
        }

        return true;
    }

    [Fact]
    public async Task CeleriacSignedClient_ToSignedCeleryWorker_Runs_UnsignedAndTamperedRefused()
    {
        string queue = "signed.py." + Guid.NewGuid().ToString("N");
        await using PythonWorker worker = await PythonWorker.StartAsync(Broker, Backend, queue, concurrency: 1, nodeName: "signed-py@localhost",
            pool: "solo", environment: PythonSigning());
        await using CeleriacApp signed = SignedClient();
        await using CeleriacApp unsigned = fx.NewApp(o => (o.BrokerUrl, o.ResultBackend) = (Broker, Backend));

        AsyncResult plain = await unsigned.SendTaskAsync("tasks.add", [100, 1], null, new ApplyOptions { Queue = queue }, Ct);
        string tampered = await PublishTamperedAsync(signed, queue, 200);
        AsyncResult good = await signed.SendTaskAsync("tasks.add", [2, 3], null, new ApplyOptions { Queue = queue }, Ct);

        Assert.Equal(5, await good.GetAsync<int>(s_wait, Ct));
        Assert.Contains("Refusing to deserialize untrusted content of type json", worker.Log, StringComparison.Ordinal);
        Assert.Contains("Can't decode message body", worker.Log, StringComparison.Ordinal);
        Assert.DoesNotContain($"Task tasks.add[{plain.Id}] received", worker.Log, StringComparison.Ordinal);
        Assert.DoesNotContain($"Task tasks.add[{tampered}] received", worker.Log, StringComparison.Ordinal);
        Assert.Null(await signed.ResultBackend.GetAsync(plain.Id, Ct));
        Assert.Null(await signed.ResultBackend.GetAsync(tampered, Ct));
    }
}
