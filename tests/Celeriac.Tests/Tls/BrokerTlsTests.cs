using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Celeriac.TestServers;

namespace Celeriac.Tests.Tls;

/// <summary>Certificates made once for a test class (RSA keys take a moment to make).</summary>
public sealed class TestCertificatesFixture : IDisposable
{
    public TestCertificates Certificates { get; } = TestCertificates.Create();

    public void Dispose() => Certificates.Dispose();
}

/// <summary>The TLS options of a <c>rediss://</c> or <c>amqps://</c> URL as kombu, redis-py and Celery spell them.</summary>
public sealed class BrokerTlsTests(TestCertificatesFixture fixture) : IClassFixture<TestCertificatesFixture>
{
    private readonly TestCertificates _certs = fixture.Certificates;

    [Theory]
    [InlineData("redis://:secret@127.0.0.1:6380/0", "rediss://:secret@127.0.0.1:6380/0?ssl_ca_certs={ca}&ssl_cert_reqs=2")]
    [InlineData("rediss://127.0.0.1/1?ssl_cert_reqs=none", "rediss://127.0.0.1/1?ssl_cert_reqs=none&ssl_ca_certs={ca}")]
    [InlineData("amqp://guest:guest@127.0.0.1:5671/%2F", "amqps://guest:guest@127.0.0.1:5671/%2F?ssl_ca_certs={ca}&ssl_cert_reqs=2")]
    public void WithOptions_CelerysBrokerUseSsl_TurnsTlsOn_AddsWhatTheUrlDoesNotGive(string url, string expected)
    {
        // Celery's broker_use_ssl as a config file holds it: ssl.CERT_REQUIRED is 2; "cert_reqs" without its prefix too.
        var options = new Dictionary<string, string> { ["ssl_ca_certs"] = _certs.CaFile, ["cert_reqs"] = "2" };

        string secured = BrokerTls.WithOptions(url, options, "BrokerUseSsl");

        Assert.Equal(expected.Replace("{ca}", Uri.EscapeDataString(_certs.CaFile), StringComparison.Ordinal), secured);
        BrokerTls tls = BrokerTls.FromUrl(new Uri(secured));
        Assert.Equal(url.Contains("cert_reqs=none", StringComparison.Ordinal) ? TlsVerification.None : TlsVerification.Required, tls.Verification);
        Assert.Equal(url, BrokerTls.WithOptions(url, new Dictionary<string, string>(), "BrokerUseSsl"));
    }

    [Fact]
    public void WithOptions_OnAUrlWithoutATlsForm_ConfigurationErrorNamingTheSetting()
    {
        var options = new Dictionary<string, string> { ["ssl_ca_certs"] = "/etc/ca.pem" };

        var error = Assert.Throws<CeleriacConfigurationException>(() => BrokerTls.WithOptions("postgresql://u:secret@127.0.0.1/celery", options, "BrokerUseSsl"));

        Assert.Contains("BrokerUseSsl turns TLS on for redis:// and amqp:// URLs", error.Message, StringComparison.Ordinal);
        Assert.Contains("sslmode", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoOptions_ServerVerified_HostNameChecked_NoClientCertificate()
    {
        BrokerTls tls = BrokerTls.FromUrl(new Uri("rediss://:secret@127.0.0.1:6380/0"));

        Assert.Equal(TlsVerification.Required, tls.Verification);
        Assert.True(tls.CheckHostName);
        Assert.Null(tls.CaFile);
        Assert.Null(tls.ClientCertificate);
        Assert.Equal("127.0.0.1", tls.Host);
        Assert.Equal("rediss://:**@127.0.0.1:6380/0", tls.Display);
    }

    [Theory]
    [InlineData("ssl_cert_reqs=required", TlsVerification.Required)]
    [InlineData("ssl_cert_reqs=CERT_REQUIRED", TlsVerification.Required)]
    [InlineData("ssl_cert_reqs=optional", TlsVerification.Required)] // Python: a client's CERT_OPTIONAL is CERT_REQUIRED.
    [InlineData("ssl_cert_reqs=CERT_OPTIONAL", TlsVerification.Required)]
    [InlineData("ssl_cert_reqs=none", TlsVerification.None)]
    [InlineData("ssl_cert_reqs=CERT_NONE", TlsVerification.None)]
    [InlineData("cert_reqs=CERT_NONE", TlsVerification.None)]
    public void CertReqs_KombuSpellings(string query, TlsVerification expected) =>
        Assert.Equal(expected, BrokerTls.FromUrl(new Uri("amqps://h/?" + query)).Verification);

    [Fact]
    public void CertReqs_Unknown_ClearErrorListingTheValues()
    {
        var e = Assert.Throws<CeleriacConfigurationException>(() => BrokerTls.FromUrl(new Uri("rediss://u:pw@h:1/0?ssl_cert_reqs=sometimes")));
        Assert.Equal("'rediss://u:**@h:1/0?ssl_cert_reqs=sometimes': ssl_cert_reqs must be required, optional or none (CERT_REQUIRED, CERT_OPTIONAL, CERT_NONE), not 'sometimes'.", e.Message);
    }

    [Fact]
    public void CheckHostName_False_AndBadValue()
    {
        Assert.False(BrokerTls.FromUrl(new Uri("rediss://h/0?ssl_check_hostname=false")).CheckHostName);
        var e = Assert.Throws<CeleriacConfigurationException>(() => BrokerTls.FromUrl(new Uri("rediss://h/0?ssl_check_hostname=maybe")));
        Assert.Contains("ssl_check_hostname must be true or false, not 'maybe'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CaFile_LoadedFromPem_MissingOrEmptyIsAClearError()
    {
        BrokerTls tls = BrokerTls.FromUrl(new Uri("rediss://h/0?ssl_ca_certs=" + Uri.EscapeDataString(_certs.CaFile)));
        Assert.Equal(_certs.CaFile, tls.CaFile);

        string missing = Path.Join(_certs.Directory, "missing.pem");
        var e = Assert.Throws<CeleriacConfigurationException>(() => BrokerTls.FromUrl(new Uri("rediss://h/0?ssl_ca_certs=" + Uri.EscapeDataString(missing))));
        Assert.Contains($"ssl_ca_certs '{missing}' cannot be read as PEM certificates", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<CeleriacConfigurationException>(() => BrokerTls.FromUrl(new Uri("rediss://h/0?ssl_ca_certs=" + Uri.EscapeDataString(_certs.ServerKeyFile))));
        Assert.Contains("holds no PEM certificate", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ClientCertificate_LoadedWithItsKey_KeyAloneOrWrongFileIsAClearError()
    {
        BrokerTls tls = BrokerTls.FromUrl(new Uri($"amqps://h/?certfile={Uri.EscapeDataString(_certs.ClientCertFile)}&keyfile={Uri.EscapeDataString(_certs.ClientKeyFile)}"));
        Assert.NotNull(tls.ClientCertificate);
        Assert.True(tls.ClientCertificate.HasPrivateKey);
        Assert.Equal("CN=celeriac-client", tls.ClientCertificate.Subject);

        var e = Assert.Throws<CeleriacConfigurationException>(() => BrokerTls.FromUrl(new Uri($"amqps://h/?ssl_keyfile={Uri.EscapeDataString(_certs.ClientKeyFile)}")));
        Assert.Contains("ssl_keyfile is set without ssl_certfile", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<CeleriacConfigurationException>(() => BrokerTls.FromUrl(new Uri($"amqps://h/?ssl_certfile={Uri.EscapeDataString(_certs.ClientCertFile)}&ssl_keyfile={Uri.EscapeDataString(_certs.ServerKeyFile)}")));
        Assert.Contains($"the client certificate ssl_certfile '{_certs.ClientCertFile}' with ssl_keyfile '{_certs.ServerKeyFile}' cannot be loaded", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_AnErrorThatIsNotTls_IsNull_ARefusedHandshakeSaysWhatToSet()
    {
        BrokerTls tls = BrokerTls.FromUrl(new Uri("rediss://:pw@h/0"));

        Assert.Null(tls.Explain(new IOException("connection reset")));
        Assert.Null(tls.RecentFailure);

        CeleriacConfigurationException? clear = tls.Explain(new IOException("read failed", new AuthenticationException("tlsv13 alert certificate required")));
        Assert.NotNull(clear);
        Assert.Equal("TLS to 'rediss://:**@h/0' failed: the server refused the handshake (tlsv13 alert certificate required); if the server requires a client certificate, set ssl_certfile and ssl_keyfile in the URL.", clear.Message);
    }

    [Fact]
    public void Explain_AConnectionReset_IsARefusedHandshakeOnlyForAFreshConnect()
    {
        BrokerTls tls = BrokerTls.FromUrl(new Uri("amqps://guest:guest@h/"));
        var reset = new IOException("write failed", new SocketException((int)SocketError.ConnectionReset));

        Assert.Null(tls.Explain(reset));
        Assert.Equal(
            "TLS to 'amqps://guest:**@h/' failed: the server refused the handshake (Connection reset by peer); if the server requires a client certificate, set ssl_certfile and ssl_keyfile in the URL.",
            tls.Explain(reset, closedMeansRefused: true)?.Message);
    }

    [Fact]
    public void Validate_CertReqsNone_AcceptsAnything_RequiredRejectsAMissingCertificateAndRemembersWhy()
    {
        Assert.True(BrokerTls.FromUrl(new Uri("rediss://h/0?ssl_cert_reqs=none")).Validate(null, null, SslPolicyErrors.RemoteCertificateNotAvailable));

        BrokerTls tls = BrokerTls.FromUrl(new Uri("rediss://h/0"));
        Assert.False(tls.Validate(null, null, SslPolicyErrors.RemoteCertificateNotAvailable));
        Assert.Equal("the server sent no certificate", tls.RecentFailure);
        Assert.Equal("TLS to 'rediss://h/0' failed: the server sent no certificate.", tls.Explain(new IOException("x"))?.Message);
    }

    [Fact]
    public void ClientCertificateRequest_Unanswered_ExplainsADroppedConnect_UntilAConnectionSucceeds()
    {
        BrokerTls tls = BrokerTls.FromUrl(new Uri("amqps://guest:guest@h/"));
        using var server = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(_certs.ServerCertFile);
        var dropped = new IOException("connection.start was never received", new TimeoutException("timed out"));

        // .NET's first call comes before the handshake, without the server's certificate: not a request.
        Assert.Null(tls.SelectClientCertificate(null, []));
        Assert.Null(tls.MissingClientCertificate(dropped));

        Assert.Null(tls.SelectClientCertificate(server, ["CN=Celeriac Test CA"]));
        Assert.Equal(
            "TLS to 'amqps://guest:**@h/' failed: the server refused the handshake (timed out); it asked for a client certificate (CN=Celeriac Test CA) and none is set: set ssl_certfile and ssl_keyfile in the URL.",
            tls.MissingClientCertificate(dropped)?.Message);

        // A server whose client certificates are optional asks too, and then serves: the request is forgotten.
        tls.NoteConnected();
        Assert.Null(tls.MissingClientCertificate(dropped));
    }

    [Fact]
    public void ClientCertificateRequest_WithACertificateSet_IsAnsweredWithIt()
    {
        BrokerTls tls = BrokerTls.FromUrl(new Uri("amqps://h/?ssl_certfile=" + Uri.EscapeDataString(_certs.ClientCertFile) + "&ssl_keyfile=" + Uri.EscapeDataString(_certs.ClientKeyFile)));
        using var server = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(_certs.ServerCertFile);

        Assert.Same(tls.ClientCertificate, tls.SelectClientCertificate(server, ["CN=Celeriac Test CA"]));
        Assert.Null(tls.MissingClientCertificate(new IOException("reset")));
    }

    [Fact]
    public async Task Explain_AWriteAfterATls13ServerRejectedTheClientCertificate_IsARefusedHandshake()
    {
        // TLS 1.3 checks the client's certificate after the client has finished its side: the client learns of the
        // refusal on a later read (the alert), and a write after that fails with no alert in it. That write is what a
        // broker client often sees first (its reader got the alert).
        BrokerTls tls = BrokerTls.FromUrl(new Uri("amqps://127.0.0.1/?ssl_ca_certs=" + Uri.EscapeDataString(_certs.CaFile) + "&ssl_certfile=" + Uri.EscapeDataString(_certs.StrangerCertFile) + "&ssl_keyfile=" + Uri.EscapeDataString(_certs.StrangerKeyFile)));
        using System.Security.Cryptography.X509Certificates.X509Certificate2 serverCertificate =
            System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(_certs.ServerCertFile, _certs.ServerKeyFile);
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        Task serving = ServeOneAsync(listener, serverCertificate, timeout.Token);

        using var client = new TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, ((System.Net.IPEndPoint)listener.LocalEndpoint).Port, timeout.Token);
        using var ssl = new SslStream(client.GetStream(), leaveInnerStreamOpen: false, (_, cert, chain, errors) => tls.Validate(cert, chain, errors));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            EnabledSslProtocols = SslProtocols.Tls13,
            ClientCertificates = [tls.ClientCertificate!],
            LocalCertificateSelectionCallback = (_, _, _, remote, issuers) => tls.SelectClientCertificate(remote, issuers)!,
        }, timeout.Token);

        await Assert.ThrowsAnyAsync<Exception>(async () => await ssl.ReadExactlyAsync(new byte[16], timeout.Token));
        Exception write = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            // The first writes may still reach the socket's buffer: the peer's reset shows on a later one.
            for (int i = 0; i < 50; i++)
            {
                await ssl.WriteAsync("AMQP"u8.ToArray(), timeout.Token);
                await Task.Delay(10, timeout.Token);
            }
        });
        await serving;

        CeleriacConfigurationException? clear = tls.Explain(write, closedMeansRefused: true);
        Assert.True(clear is not null, $"not explained: {write}");
        Assert.Contains("the server refused the handshake", clear.Message, StringComparison.Ordinal);
        Assert.Contains("CN=Celeriac Unrelated CA", clear.Message, StringComparison.Ordinal);
    }

    private static async Task ServeOneAsync(TcpListener listener, System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, CancellationToken ct)
    {
        using TcpClient accepted = await listener.AcceptTcpClientAsync(ct);
        using var ssl = new SslStream(accepted.GetStream(), leaveInnerStreamOpen: false, (_, cert, _, _) => false);
        try
        {
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = certificate,
                ClientCertificateRequired = true,
                EnabledSslProtocols = SslProtocols.Tls13,
            }, ct);
        }
        catch (AuthenticationException)
        {
            // The refusal: the server's side sends the alert and closes.
        }
    }

    [Fact]
    public void Explain_AFailedTlsRecordWrite_IsARefusedHandshakeOnlyForAFreshConnect_WhateverItsSourceSays()
    {
        // What RabbitMQ.Client once surfaced for a refused client certificate (in a run of the unit tests four at a
        // time): SslStream's IOException over OpenSSL's SSL_ERROR_SYSCALL, which was not explained. Its Source is no
        // sure sign of where it came from: one thrown through async code can name System.Private.CoreLib.
        Type sslError = typeof(SslStream).Assembly.GetType("Interop+OpenSsl+SslException", throwOnError: true)!;
        var cause = (Exception)Activator.CreateInstance(sslError, System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic, null, ["Operation failed with error - 5.", 5], null)!;
        var write = new IOException("The encryption operation failed, see inner exception.", cause) { Source = "System.Private.CoreLib" };
        BrokerTls tls = BrokerTls.FromUrl(new Uri("amqps://guest:guest@h/"));

        Assert.Null(tls.Explain(write));
        Assert.Equal(
            "TLS to 'amqps://guest:**@h/' failed: the server refused the handshake (Operation failed with error - 5.); if the server requires a client certificate, set ssl_certfile and ssl_keyfile in the URL.",
            tls.Explain(write, closedMeansRefused: true)?.Message);
    }
}
