namespace Celeriac.InteropTests.Redis;

/// <summary><see cref="RemoteControlInteropTests"/> on a real Redis (broker db 0, results db 1) with the fixture's Celery and Celeriac workers.</summary>
public sealed class RedisRemoteControlInteropTests(RedisInteropFixture fx) : RemoteControlInteropTests
{
    protected override IReadOnlyDictionary<string, string> PythonEnvironment => fx.PythonEnvironment;

    protected override string PythonNode => RedisInteropFixture.PythonNode;

    protected override async Task<string> CeleriacNodeAsync()
    {
        await fx.EnsureCeleriacWorkerAsync();
        return RedisInteropFixture.CeleriacNode;
    }

    protected override CeleriacApp NewApp(Action<CeleriacOptions>? configure = null) => fx.NewApp(configure);

    protected override Task<PythonWorker> StartPythonWorkerAsync(string queue, string node, string pool, int concurrency) =>
        PythonWorker.StartAsync(fx.BrokerUrl, fx.BackendUrl, queue, concurrency, node, pool: pool);
}
