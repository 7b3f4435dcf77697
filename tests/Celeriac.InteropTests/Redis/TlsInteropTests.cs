using Celeriac.TestServers;
using Celeriac.Worker;

namespace Celeriac.InteropTests.Redis;

/// <summary>
/// Python Celery 5.2 (redis-py under kombu) and Celeriac on one redis-server over TLS, both verifying the server's
/// certificate against the same throwaway CA: Python sends with <c>broker_use_ssl</c> and
/// <c>redis_backend_use_ssl</c>, an in-process Celeriac worker on <c>rediss://…?ssl_ca_certs=</c> runs the task, and
/// Python reads the result.
/// </summary>
public sealed class TlsInteropTests : IAsyncLifetime
{
    private readonly TestCertificates _certs = TestCertificates.Create();
    private RedisServer _server = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _server = await RedisServer.StartTlsAsync(_certs, requireClientCertificates: false, Ct);

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _certs.Dispose();
    }

    [Fact]
    public async Task PythonSendsOverTls_CeleriacWorkerRunsIt_PythonReadsTheResult()
    {
        string query = "ssl_ca_certs=" + Uri.EscapeDataString(_certs.CaFile);
        await using var app = new CeleriacApp(new CeleriacOptions { BrokerUrl = _server.TlsUrl(0, query), ResultBackend = _server.TlsUrl(1, query), Concurrency = 1 });
        app.Task("tls.add", (int x, int y) => x + y);
        using var stop = new CancellationTokenSource();
        var worker = new CeleriacWorker(app);
        Task run = worker.RunAsync(stop.Token);
        await worker.Ready.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        string output = await PythonCelery.RunAsync(
            """
            import ssl, sys
            from celery import Celery
            port, ca = sys.argv[1], sys.argv[2]
            opts = {'ssl_cert_reqs': ssl.CERT_REQUIRED, 'ssl_ca_certs': ca}
            app = Celery('tls', broker=f'rediss://127.0.0.1:{port}/0', backend=f'rediss://127.0.0.1:{port}/1')
            app.conf.broker_use_ssl = opts
            app.conf.redis_backend_use_ssl = opts
            print(app.send_task('tls.add', (20, 22)).get(timeout=20))
            """,
            _server.TlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _certs.CaFile);

        Assert.Equal("42", output.Trim());
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20), Ct);
    }
}
