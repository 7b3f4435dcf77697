using Celeriac;
using Celeriac.RabbitMQ;

[assembly: CeleriacProvider(typeof(RabbitMqProvider))]

namespace Celeriac.RabbitMQ;

/// <summary>Registers <c>amqp://</c> and <c>amqps://</c> as brokers and <c>rpc://</c> as a result backend.</summary>
public sealed class RabbitMqProvider : ICeleriacProvider
{
    /// <inheritdoc />
    public void Register(ProviderRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.AddTransport("amqp", static o => new RabbitMqTransport(o));
        registry.AddTransport("amqps", static o => new RabbitMqTransport(o));
        registry.AddResultBackend("rpc", static o => new RpcResultBackend(o));
    }
}
