using Celeriac.Results;
using Celeriac.Transport;

namespace Celeriac.Tests.Conformance;

public sealed class MemoryTransportConformanceTests : TransportConformanceTests
{
    private readonly Uri _url = new("memory://" + Guid.NewGuid().ToString("N"));

    protected override ValueTask<ITransport> CreateTransportAsync(TransportSetup setup) =>
        ValueTask.FromResult<ITransport>(new MemoryTransport(_url));

    protected override string? NoPrioritiesReason => "memory:// keeps one FIFO list per queue, as kombu's memory transport does.";
}

public sealed class MemoryResultBackendConformanceTests : ResultBackendConformanceTests
{
    private readonly Uri _url = new("memory://" + Guid.NewGuid().ToString("N"));

    protected override ValueTask<IResultBackend> CreateBackendAsync(BackendSetup setup) =>
        ValueTask.FromResult<IResultBackend>(new MemoryResultBackend(new ResultBackendOptions
        {
            Url = _url,
            TimeProvider = setup.Time ?? TimeProvider.System,
            ResultExpires = setup.Expires ?? TimeSpan.FromDays(1),
            PollInterval = TimeSpan.FromMilliseconds(100),
        }));
}

public sealed class MemoryBeatStoreConformanceTests : BeatStoreConformanceTests
{
    private Celeriac.Beat.MemoryBeatStore? _store;

    // One process: every "other" store is the same one.
    protected override Celeriac.Beat.IBeatStore CreateStore(TimeProvider time) => _store ??= new Celeriac.Beat.MemoryBeatStore(time);
}
