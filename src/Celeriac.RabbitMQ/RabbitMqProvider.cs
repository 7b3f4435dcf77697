using Celeriac;
using Celeriac.RabbitMQ;

[assembly: CeleriacProvider(typeof(RabbitMqProvider))]

namespace Celeriac.RabbitMQ;

/// <summary>
/// Registers <c>amqp://</c> and <c>amqps://</c> as brokers and <c>rpc://</c> as a result backend, the one an app on
/// these brokers uses when it configures none (Celery's users expect it there).
/// </summary>
public sealed class RabbitMqProvider : ICeleriacProvider
{
    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.AddTransport("amqp", static o => new RabbitMqTransport(o), defaultResultBackend: "rpc://");
        registry.AddTransport("amqps", static o => new RabbitMqTransport(o), defaultResultBackend: "rpc://");
        registry.AddResultBackend("rpc", static o => new RpcResultBackend(o));
    }
}
