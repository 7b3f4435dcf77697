namespace Celeriac.Tests.Telemetry;

/// <summary>
/// Tracing and metrics listen to every Celeriac app in the process, and a listener makes publishes carry a
/// <c>traceparent</c> header: these tests run alone, so that they neither see other tests' tasks nor change the
/// messages other tests compare.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TelemetryGroup
{
    public const string Name = "Telemetry";
}
