using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Celeriac.Benchmarks;

/// <summary>
/// What an OpenTelemetry SDK does to Celeriac's hot path, without the SDK: every span of the <c>Celeriac</c> source
/// recorded with all its data, every instrument of the <c>Celeriac</c> meter enabled; both only counted.
/// </summary>
internal sealed class TelemetryListener : IDisposable
{
    private readonly ActivityListener _activities;
    private readonly MeterListener _meters;
    private long _spans;
    private long _measurements;

    public TelemetryListener()
    {
        _activities = new ActivityListener
        {
            ShouldListenTo = static s => s.Name == "Celeriac",
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _ => Interlocked.Increment(ref _spans),
        };
        ActivitySource.AddActivityListener(_activities);
        _meters = new MeterListener
        {
            InstrumentPublished = static (instrument, listener) =>
            {
                if (instrument.Meter.Name == "Celeriac")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _meters.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref _measurements));
        _meters.SetMeasurementEventCallback<long>((_, _, _, _) => Interlocked.Increment(ref _measurements));
        _meters.SetMeasurementEventCallback<int>((_, _, _, _) => Interlocked.Increment(ref _measurements));
        _meters.Start();
    }

    public long Spans => Interlocked.Read(ref _spans);

    public long Measurements => Interlocked.Read(ref _measurements);

    public void Dispose()
    {
        _meters.Dispose();
        _activities.Dispose();
    }
}
