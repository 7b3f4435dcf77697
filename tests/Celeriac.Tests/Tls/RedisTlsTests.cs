using System.Diagnostics;
using Celeriac.TestServers;
using Celeriac.Tests.Support;
using Celeriac.Worker;

namespace Celeriac.Tests.Tls;

/// <summary>
/// Two real redis-servers with TLS ports whose certificates a throwaway CA signed: one lets clients come without a
/// certificate, the other requires one of that CA.
/// </summary>
public sealed class RedisTlsFixture : IAsyncLifetime
{
    public TestCertificates Certificates { get; } = TestCertificates.Create();

    public RedisServer Server { get; private set; } = null!;

    public RedisServer ClientAuthServer { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        RedisServer[] servers = await Task.WhenAll(
            RedisServer.StartTlsAsync(Certificates, requireClientCertificates: false),
            RedisServer.StartTlsAsync(Certificates, requireClientCertificates: true));
        Server = servers[0];
        ClientAuthServer = servers[1];
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await ClientAuthServer.DisposeAsync();
        Certificates.Dispose();
    }
}

/// <summary>
/// <c>rediss://</c> as users run it: the server's certificate verified (against <c>ssl_ca_certs</c>), a client
/// certificate when the server asks for one, and a clear, quick error naming the broker when TLS cannot work.
/// </summary>
public sealed class RedisTlsTests(RedisTlsFixture tls) : IClassFixture<RedisTlsFixture>
{
    // The failures come within the client's connect timeout (5 s) and a retry, not after the minute a send waits
    // for an unreachable Redis: a handshake that failed fails again, there is nothing to wait for.
    private static readonly TimeSpan s_quickFailure = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Ca => "ssl_ca_certs=" + Uri.EscapeDataString(tls.Certificates.CaFile);

    private string ClientCert => "ssl_certfile=" + Uri.EscapeDataString(tls.Certificates.ClientCertFile) + "&ssl_keyfile=" + Uri.EscapeDataString(tls.Certificates.ClientKeyFile);

    [Fact]
    public async Task TaskRunsThroughAWorker_BrokerAndResultsOverTls_ServerVerifiedWithTheCaOption()
    {
        string broker = tls.Server.TlsUrl(2, Ca);
        string results = tls.Server.TlsUrl(3, Ca + "&ssl_cert_reqs=required");
        await using RunningWorker worker = await RunningWorker.StartAsync(NewApp(broker, results));

        await using CeleriacApp client = NewApp(broker, results);
        AsyncResult sent = await client.SendTaskAsync("tls.add", [2, 3], ct: Ct);

        Assert.Equal(5, await sent.GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
    }

    [Fact]
    public async Task CelerysSettings_BrokerUseSslAndRedisBackendUseSsl_OnRedisUrls_TaskRunsOverTls()
    {
        // Celery's way: plain redis:// URLs (to the TLS port) and the TLS options as settings, from appsettings.json.
        string dir = Directory.CreateTempSubdirectory("celeriac-tls-").FullName;
        try
        {
            string ca = System.Text.Json.JsonSerializer.Serialize(tls.Certificates.CaFile);
            File.WriteAllText(Path.Join(dir, "appsettings.json"), $$"""
                { "Celeriac": {
                    "BrokerUrl": "redis://127.0.0.1:{{tls.Server.TlsPort}}/6",
                    "ResultBackend": "redis://127.0.0.1:{{tls.Server.TlsPort}}/7",
                    "BrokerUseSsl": { "ssl_cert_reqs": "required", "ssl_ca_certs": {{ca}} },
                    "ResultBackendSettings": { "redis_backend_use_ssl": { "ssl_ca_certs": {{ca}} } } } }
                """);
            CeleriacApp Configured()
            {
                var options = new CeleriacOptions { Concurrency = 2 };
                CeleriacSettings.Apply(options, Path.Join(dir, "appsettings.json"), environment: _ => null);
                var app = new CeleriacApp(options);
                app.Task("tls.add", (int x, int y) => x + y);
                return app;
            }

            await using RunningWorker worker = await RunningWorker.StartAsync(Configured());
            await using CeleriacApp client = Configured();
            AsyncResult sent = await client.SendTaskAsync("tls.add", [2, 3], ct: Ct);

            Assert.Equal(5, await sent.GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
            Assert.StartsWith($"rediss://127.0.0.1:{tls.Server.TlsPort}/6?", client.Options.BrokerUrl, StringComparison.Ordinal);
            Assert.Contains("ssl_cert_reqs=required", client.Options.BrokerUrl, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task DefaultVerification_SelfSignedServer_ClearErrorWithinSeconds_NamesTheOptionToSet()
    {
        await using CeleriacApp client = NewApp(tls.Server.TlsUrl(4), "memory://");
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<CeleriacConfigurationException>(() => client.SendTaskAsync("tls.add", [1, 1], ct: Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, s_quickFailure);
        Assert.Contains("TLS to '" + tls.Server.TlsUrl(4) + "' failed", error.Message, StringComparison.Ordinal);
        Assert.Contains("not trusted", error.Message, StringComparison.Ordinal);
        Assert.Contains("ssl_ca_certs=", error.Message, StringComparison.Ordinal);
        Assert.Contains("Celeriac Test CA", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongCa_ClearErrorWithinSeconds_NamesTheCaFile()
    {
        string url = tls.Server.TlsUrl(4, "ssl_ca_certs=" + Uri.EscapeDataString(tls.Certificates.OtherCaFile));
        await using CeleriacApp client = NewApp(url, "memory://");
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<CeleriacConfigurationException>(() => client.SendTaskAsync("tls.add", [1, 1], ct: Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, s_quickFailure);
        Assert.Contains("does not chain to a CA of ssl_ca_certs '" + tls.Certificates.OtherCaFile + "'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CertReqsNone_AcceptsTheSelfSignedServer()
    {
        await using CeleriacApp client = NewApp(tls.Server.TlsUrl(5, "ssl_cert_reqs=none"), "memory://");

        await client.SendTaskAsync("tls.add", [1, 1], ct: Ct);

        Assert.Equal("1", (await tls.Server.CliAsync("-n", "5", "LLEN", "celery")).Trim());
    }

    [Fact]
    public async Task ServerRequiresClientCertificate_Given_TaskRuns()
    {
        string url = tls.ClientAuthServer.TlsUrl(2, Ca + "&" + ClientCert);
        await using RunningWorker worker = await RunningWorker.StartAsync(NewApp(url, url));
        await using CeleriacApp client = NewApp(url, url);

        AsyncResult sent = await client.SendTaskAsync("tls.add", [20, 22], ct: Ct);

        Assert.Equal(42, await sent.GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
    }

    [Fact]
    public async Task ServerRequiresClientCertificate_NotGiven_ClearErrorWithinSeconds()
    {
        await using CeleriacApp client = NewApp(tls.ClientAuthServer.TlsUrl(3, Ca), "memory://");
        var clock = Stopwatch.StartNew();

        // TLS 1.3 refuses the missing certificate after the handshake: the client may see only a closed or cancelled
        // connection, but it saw the server ask for a certificate, and says so.
        var error = await Assert.ThrowsAsync<CeleriacConfigurationException>(() => client.SendTaskAsync("tls.add", [1, 1], ct: Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, s_quickFailure);
        Assert.Contains("TLS to '" + tls.ClientAuthServer.TlsUrl(3, Ca) + "' failed", error.Message, StringComparison.Ordinal);
        Assert.Contains("the server refused the handshake", error.Message, StringComparison.Ordinal);

        // Redis names no CA in its request (RabbitMQ does: see RabbitMqTlsTests).
        Assert.Contains("it asked for a client certificate (any CA) and none is set: set ssl_certfile and ssl_keyfile", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Worker_WrongCa_StopsWithTheClearErrorWithinSeconds_RunsNothing()
    {
        string url = tls.Server.TlsUrl(6, "ssl_ca_certs=" + Uri.EscapeDataString(tls.Certificates.OtherCaFile));
        var logs = new CollectingLoggerFactory();
        await using CeleriacApp app = NewApp(url, url, logs);
        var worker = new CeleriacWorker(app);
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<CeleriacConfigurationException>(() => worker.RunAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, s_quickFailure);
        Assert.Contains("TLS to '" + url + "' failed", error.Message, StringComparison.Ordinal);
        Assert.False(worker.Ready.IsCompletedSuccessfully);
        Assert.Contains(logs.Entries, e => e.Message.Contains("does not chain to a CA of ssl_ca_certs", StringComparison.Ordinal));
    }

    private static CeleriacApp NewApp(string broker, string results, CollectingLoggerFactory? logs = null)
    {
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker, ResultBackend = results, Concurrency = 2, LoggerFactory = logs });
        app.Task("tls.add", (int x, int y) => x + y);
        return app;
    }
}
