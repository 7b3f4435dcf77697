namespace Celeriac.InteropTests.RabbitMq;

/// <summary><see cref="RemoteControlInteropTests"/> on a real rabbitmq-server (rpc:// results) with the fixture's Celery and Celeriac workers.</summary>
[Collection(RabbitMqInteropGroup.Name)]
public sealed class RabbitMqRemoteControlInteropTests(RabbitMqInteropFixture fx) : RemoteControlInteropTests
{
    protected override IReadOnlyDictionary<string, string> PythonEnvironment => fx.PythonEnvironment;

    protected override string PythonNode => RabbitMqInteropFixture.PythonNode;

    protected override Task<string> CeleriacNodeAsync() => Task.FromResult(RabbitMqInteropFixture.CeleriacNode);

    protected override CeleriacApp NewApp(Action<CeleriacOptions>? configure = null) => fx.NewApp(configure);

    protected override Task<PythonWorker> StartPythonWorkerAsync(string queue, string node, string pool, int concurrency) =>
        PythonWorker.StartAsync(fx.Server.Url(), "rpc://", queue, concurrency, node, pool: pool);
}
