namespace Celeriac.OpenTelemetry;

/// <summary>Registers Celeriac's <c>ActivitySource</c> and <c>Meter</c> with OpenTelemetry.</summary>
public static class CeleriacInstrumentation
{
}
