using System.Globalization;
using System.Text.Json;

namespace Celeriac.Beat;

/// <summary>
/// Celery's <c>solar(event, lat, lon)</c>: runs at a solar event (sunrise, sunset, dawn, dusk, solar noon) at a place.
/// On days without the event (polar day or night) it does not run; the next run is the next day that has it.
/// </summary>
public sealed class SolarSchedule : BeatSchedule
{
    // Days searched for an event before giving up: a year and a margin covers every polar night.
    private const int SearchDays = 370;

    private static readonly string[] s_events =
    [
        "dawn_astronomical", "dawn_nautical", "dawn_civil", "sunrise", "solar_noon",
        "sunset", "dusk_civil", "dusk_nautical", "dusk_astronomical",
    ];

    private readonly double _horizon;
    private readonly int _side;

    /// <summary>Creates a solar schedule as Celery's <c>solar(event, lat, lon)</c>.</summary>
    /// <param name="event">One of <see cref="Events"/>.</param>
    /// <param name="latitude">Degrees north, -90 to 90.</param>
    /// <param name="longitude">Degrees east, -180 to 180.</param>
    /// <exception cref="FormatException">An unknown event, or a latitude or longitude out of range.</exception>
    public SolarSchedule(string @event, double latitude, double longitude)
    {
        ArgumentNullException.ThrowIfNull(@event);
        if (Array.IndexOf(s_events, @event) < 0)
        {
            throw new FormatException($"solar event '{@event}' is invalid, must be one of {string.Join(", ", s_events)}");
        }

        if (!(latitude >= -90 && latitude <= 90))
        {
            throw new FormatException($"solar latitude {Format(latitude)} is invalid, must be between -90 and 90");
        }

        if (!(longitude >= -180 && longitude <= 180))
        {
            throw new FormatException($"solar longitude {Format(longitude)} is invalid, must be between -180 and 180");
        }

        Event = @event;
        Latitude = latitude;
        Longitude = longitude;

        // The sun's centre at these altitudes (degrees): -0.833 for sunrise and sunset (refraction and the sun's
        // half-width, NOAA's and ephem's horizon -0:34 with the upper limb), -6/-12/-18 for civil/nautical/astronomical.
        (_horizon, _side) = @event switch
        {
            "dawn_astronomical" => (-18.0, -1),
            "dawn_nautical" => (-12.0, -1),
            "dawn_civil" => (-6.0, -1),
            "sunrise" => (-0.833, -1),
            "solar_noon" => (0.0, 0),
            "sunset" => (-0.833, 1),
            "dusk_civil" => (-6.0, 1),
            "dusk_nautical" => (-12.0, 1),
            _ => (-18.0, 1),
        };
    }

    /// <summary>The events Celery knows, in the order of a day.</summary>
    public static IReadOnlyList<string> Events => s_events;

    /// <summary>The event.</summary>
    public string Event { get; }

    /// <summary>Degrees north.</summary>
    public double Latitude { get; }

    /// <summary>Degrees east.</summary>
    public double Longitude { get; }

    /// <inheritdoc />
    public override string Kind => "solar";

    /// <summary>Reads <c>{"type": "solar", "event": "sunrise", "lat": 48.85, "lon": 2.35}</c>.</summary>
    /// <exception cref="FormatException">A field missing or of another kind, or out of range.</exception>
    public static SolarSchedule Read(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"a solar schedule is an object, not {value.GetRawText()}");
        }

        string @event = value.TryGetProperty("event", out JsonElement e) && e.ValueKind == JsonValueKind.String
            ? e.GetString()!
            : throw new FormatException("a solar schedule needs a string 'event'");
        return new SolarSchedule(@event, Degrees(value, "lat"), Degrees(value, "lon"));
    }

    /// <inheritdoc />
    public override DateTimeOffset? NextAfter(DateTimeOffset after, TimeZoneInfo zone)
    {
        ArgumentNullException.ThrowIfNull(zone);

        // Every event of one UTC day falls within about 12 hours of that day's transit, so the day before 'after' is the
        // first that can hold the next one.
        DateTime day = after.UtcDateTime.Date.AddDays(-1);
        for (int i = 0; i < SearchDays; i++, day = day.AddDays(1))
        {
            double? minutes = NoaaSun.EventMinutes(day, Latitude, Longitude, _horizon, _side);
            if (minutes is null)
            {
                continue;
            }

            // Whole seconds, as a run time is kept and shown; so that a run fed back as 'after' is not found again.
            long ticks = day.AddMinutes(minutes.Value).Ticks;
            var at = new DateTimeOffset(ticks - (ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
            if (at > after)
            {
                return TimeZoneInfo.ConvertTime(at, zone);
            }
        }

        return null;
    }

    /// <inheritdoc />
    public override void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteString("type", Kind);
        writer.WriteString("event", Event);
        writer.WriteNumber("lat", Latitude);
        writer.WriteNumber("lon", Longitude);
        writer.WriteEndObject();
    }

    /// <summary>Celery's repr: <c>&lt;solar: sunrise at latitude 48.85, longitude: 2.35&gt;</c>.</summary>
    public override string ToString() => $"<solar: {Event} at latitude {Format(Latitude)}, longitude: {Format(Longitude)}>";

    private static string Format(double degrees) => degrees.ToString("R", CultureInfo.InvariantCulture);

    private static double Degrees(JsonElement value, string name)
    {
        if (value.TryGetProperty(name, out JsonElement d))
        {
            if (d.ValueKind == JsonValueKind.Number)
            {
                return d.GetDouble();
            }

            // django-celery-beat keeps latitude and longitude as decimals, which some serializers write as strings.
            if (d.ValueKind == JsonValueKind.String
                && double.TryParse(d.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed))
            {
                return parsed;
            }
        }

        throw new FormatException($"a solar schedule needs a number '{name}' (degrees)");
    }
}

/// <summary>
/// The sun's position by NOAA's solar calculator (the NOAA Global Monitoring Laboratory's "General Solar Position
/// Calculations" and its spreadsheet, after Jean Meeus, <i>Astronomical Algorithms</i>): declination and equation of time
/// from the Julian century, good to about a minute for event times between 1800 and 2100.
/// </summary>
internal static class NoaaSun
{
    private const double Rad = Math.PI / 180;

    /// <summary>
    /// Minutes after 00:00 UTC of <paramref name="utcDay"/> (may fall outside 0-1440) at which the sun's centre crosses
    /// <paramref name="horizon"/> degrees of altitude, rising (<paramref name="side"/> -1) or setting (1), or transits
    /// (0), on the solar day whose transit is near noon at that longitude; <see langword="null"/> when it does not cross.
    /// </summary>
    internal static double? EventMinutes(DateTime utcDay, double latitude, double longitude, double horizon, int side)
    {
        double jd0 = (utcDay - new DateTime(2000, 1, 1, 12, 0, 0, DateTimeKind.Utc)).TotalDays + 2451545.0;

        // The spreadsheet reckons the sun at one time of day; iterating at the event's own time makes it as good as the
        // formulas (declination changes up to 0.4 degree a day near the equinoxes).
        double minutes = 720 - (4 * longitude);
        bool crosses = true;
        for (int i = 0; i < 5; i++)
        {
            (double declination, double equationOfTime) = Sun(jd0 + (minutes / 1440));
            double transit = 720 - (4 * longitude) - equationOfTime;
            if (side == 0)
            {
                minutes = transit;
                continue;
            }

            double cosHourAngle = (Math.Sin(horizon * Rad) - (Math.Sin(latitude * Rad) * Math.Sin(declination * Rad)))
                / (Math.Cos(latitude * Rad) * Math.Cos(declination * Rad));
            if (double.IsNaN(cosHourAngle))
            {
                return null;
            }

            // Near polar day or night the sun may not cross at noon's declination and yet cross at midnight's: go on from
            // the nearest it comes (midnight or noon) and decide by the last step, at the event's own time.
            crosses = cosHourAngle is >= -1 and <= 1;
            minutes = transit + (side * 4 * Math.Acos(Math.Clamp(cosHourAngle, -1, 1)) / Rad);
        }

        return crosses ? minutes : null;
    }

    /// <summary>The sun's apparent declination (degrees) and the equation of time (minutes) at a Julian day.</summary>
    private static (double Declination, double EquationOfTime) Sun(double julianDay)
    {
        double t = (julianDay - 2451545.0) / 36525.0;
        double meanLongitude = Mod360(280.46646 + (t * (36000.76983 + (t * 0.0003032))));
        double meanAnomaly = 357.52911 + (t * (35999.05029 - (0.0001537 * t)));
        double eccentricity = 0.016708634 - (t * (0.000042037 + (0.0000001267 * t)));
        double centre = (Math.Sin(meanAnomaly * Rad) * (1.914602 - (t * (0.004817 + (0.000014 * t)))))
            + (Math.Sin(2 * meanAnomaly * Rad) * (0.019993 - (0.000101 * t)))
            + (Math.Sin(3 * meanAnomaly * Rad) * 0.000289);
        double omega = 125.04 - (1934.136 * t);
        double apparentLongitude = meanLongitude + centre - 0.00569 - (0.00478 * Math.Sin(omega * Rad));
        double meanObliquity = 23 + ((26 + ((21.448 - (t * (46.815 + (t * (0.00059 - (t * 0.001813)))))) / 60)) / 60);
        double obliquity = meanObliquity + (0.00256 * Math.Cos(omega * Rad));
        double declination = Math.Asin(Math.Sin(obliquity * Rad) * Math.Sin(apparentLongitude * Rad)) / Rad;

        double y = Math.Tan(obliquity / 2 * Rad);
        y *= y;
        double l0 = meanLongitude * Rad;
        double m = meanAnomaly * Rad;
        double equationOfTime = 4 / Rad * ((y * Math.Sin(2 * l0))
            - (2 * eccentricity * Math.Sin(m))
            + (4 * eccentricity * y * Math.Sin(m) * Math.Cos(2 * l0))
            - (0.5 * y * y * Math.Sin(4 * l0))
            - (1.25 * eccentricity * eccentricity * Math.Sin(2 * m)));
        return (declination, equationOfTime);
    }

    private static double Mod360(double degrees)
    {
        double r = degrees % 360;
        return r < 0 ? r + 360 : r;
    }
}
