namespace Celeriac;

/// <summary>
/// Beat's settings, for <c>AddBeat(configure: b =&gt; ...)</c>: each left <see langword="null"/> keeps the app's value
/// (<see cref="CeleriacOptions"/>, where configuration's <c>BeatScheduleUrl</c>, <c>BeatMaxInterval</c>,
/// <c>BeatLeaseTime</c>, <c>BeatMisfireGrace</c> and <c>CELERIAC_BEAT_*</c> still win, as for every setting in code).
/// </summary>
public sealed class CeleriacBeatOptions
{
    /// <summary>Where beat keeps its entries, last runs and lease (<c>BeatScheduleUrl</c>; <c>--schedule</c>).</summary>
    public string? ScheduleUrl { get; set; }

    /// <summary>The longest beat sleeps between looks at its store (<c>BeatMaxInterval</c>; <c>--max-interval</c>).</summary>
    public TimeSpan? MaxInterval { get; set; }

    /// <summary>How long beat's lease lasts without renewal (<c>BeatLeaseTime</c>).</summary>
    public TimeSpan? LeaseTime { get; set; }

    /// <summary>How late a run may still be sent (<c>BeatMisfireGrace</c>).</summary>
    public TimeSpan? MisfireGrace { get; set; }

    /// <summary>The time zone calendar schedules are reckoned in when their entry names none (<c>Timezone</c>).</summary>
    public string? Timezone { get; set; }

    /// <summary>Sets on <paramref name="options"/> every setting this holds.</summary>
    internal void ApplyTo(CeleriacOptions options)
    {
        if (ScheduleUrl is not null)
        {
            options.BeatScheduleUrl = ScheduleUrl;
        }

        if (MaxInterval is { } maxInterval)
        {
            options.BeatMaxInterval = maxInterval;
        }

        if (LeaseTime is { } leaseTime)
        {
            options.BeatLeaseTime = leaseTime;
        }

        if (MisfireGrace is { } misfireGrace)
        {
            options.BeatMisfireGrace = misfireGrace;
        }

        if (Timezone is not null)
        {
            options.Timezone = Timezone;
        }
    }
}
