using System.Diagnostics;
using Celeriac.TestServers;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Tls;

/// <summary>A real RabbitMQ node with an AMQPS listener whose certificate a throwaway CA signed, requiring client certificates of that CA.</summary>
public sealed class RabbitMqTlsFixture : IAsyncLifetime
{
    public TestCertificates Certificates { get; } = TestCertificates.Create();

    public RabbitMqServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await RabbitMqServer.StartTlsAsync(Certificates, requireClientCertificates: true);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Certificates.Dispose();
    }
}

/// <summary>
/// <c>amqps://</c> as users run it: the server's certificate verified (against <c>ssl_ca_certs</c>), the client's
/// certificate shown, results over the same connection settings (<c>rpc://</c>), and a clear, quick error naming the
/// broker (password masked) when TLS cannot work.
/// </summary>
public sealed class RabbitMqTlsTests(RabbitMqTlsFixture tls) : IClassFixture<RabbitMqTlsFixture>
{
    private static readonly TimeSpan s_quickFailure = TimeSpan.FromSeconds(5);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Ca => "ssl_ca_certs=" + Uri.EscapeDataString(tls.Certificates.CaFile);

    private string ClientCert => "ssl_certfile=" + Uri.EscapeDataString(tls.Certificates.ClientCertFile) + "&ssl_keyfile=" + Uri.EscapeDataString(tls.Certificates.ClientKeyFile);

    private static string Masked(string url) => url.Replace("guest:guest@", "guest:**@", StringComparison.Ordinal);

    [Fact]
    public async Task TaskRunsThroughAWorker_OverTls_ServerVerifiedWithTheCaOption_ClientCertificateShown_RpcResults()
    {
        string broker = tls.Server.TlsUrl("/", Ca + "&" + ClientCert);
        await using RunningWorker worker = await RunningWorker.StartAsync(NewApp(broker));
        await using CeleriacApp client = NewApp(broker);

        AsyncResult sent = await client.SendTaskAsync("tls.add", [2, 3], ct: Ct);

        Assert.Equal(5, await sent.GetAsync<int>(TimeSpan.FromSeconds(10), Ct));
        string connections = await tls.Server.CtlAsync("list_connections", "-q", "--no-table-headers", "ssl", "peer_cert_subject");
        Assert.Contains("true\tCN=celeriac-client", connections, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DefaultVerification_ServerOfAPrivateCa_ClearErrorWithinSeconds_PasswordMasked()
    {
        string url = tls.Server.TlsUrl("/", ClientCert);
        await using CeleriacApp client = NewApp(url);
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<CeleriacConfigurationException>(() => client.SendTaskAsync("tls.add", [1, 1], ct: Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, s_quickFailure);
        Assert.Contains("TLS to '" + Masked(url) + "' failed", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("guest:guest", error.Message, StringComparison.Ordinal);
        Assert.Contains("not trusted", error.Message, StringComparison.Ordinal);
        Assert.Contains("ssl_ca_certs=", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongCa_ClearErrorWithinSeconds_NamesTheCaFile()
    {
        string url = tls.Server.TlsUrl("/", "ssl_ca_certs=" + Uri.EscapeDataString(tls.Certificates.OtherCaFile) + "&" + ClientCert);
        await using CeleriacApp client = NewApp(url);
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<CeleriacConfigurationException>(() => client.SendTaskAsync("tls.add", [1, 1], ct: Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, s_quickFailure);
        Assert.Contains("does not chain to a CA of ssl_ca_certs '" + tls.Certificates.OtherCaFile + "'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerRequiresClientCertificate_NotGiven_ClearErrorWithinSeconds()
    {
        string url = tls.Server.TlsUrl("/", Ca);
        await using CeleriacApp client = NewApp(url);
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<CeleriacConfigurationException>(() => client.SendTaskAsync("tls.add", [1, 1], ct: Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, s_quickFailure);
        Assert.Contains("TLS to '" + Masked(url) + "' failed: the server refused the handshake", error.Message, StringComparison.Ordinal);
        Assert.Contains("it asked for a client certificate (CN=Celeriac Test CA) and none is set: set ssl_certfile and ssl_keyfile", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientCertificateOfAnotherCa_ClearErrorWithinSeconds_NamesItsIssuer()
    {
        string url = tls.Server.TlsUrl("/", Ca + "&ssl_certfile=" + Uri.EscapeDataString(tls.Certificates.StrangerCertFile) + "&ssl_keyfile=" + Uri.EscapeDataString(tls.Certificates.StrangerKeyFile));
        await using CeleriacApp client = NewApp(url);
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<CeleriacConfigurationException>(() => client.SendTaskAsync("tls.add", [1, 1], ct: Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, s_quickFailure);
        Assert.Contains("the server refused the handshake", error.Message, StringComparison.Ordinal);
        Assert.Contains("CN=Celeriac Unrelated CA", error.Message, StringComparison.Ordinal);
    }

    private static CeleriacApp NewApp(string broker)
    {
        var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = broker, ResultBackend = "rpc://", Concurrency = 2 });
        app.Task("tls.add", (int x, int y) => x + y);
        return app;
    }
}
