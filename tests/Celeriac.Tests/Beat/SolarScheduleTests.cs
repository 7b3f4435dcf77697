using System.Globalization;
using Celeriac.Beat;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Beat;

/// <summary>
/// Celery's solar events on fixed instants. Expected times are what Celery's solar gives through ephem (horizon -0:34
/// with the upper limb for sunrise and sunset, the centre at -6/-12/-18 degrees for twilight), which agree with the
/// published Paris times for 21 June 2026 (sunrise 05:47, sunset 21:58 CEST); they must hold within two minutes.
/// </summary>
public sealed class SolarScheduleTests
{
    private const double ParisLat = 48.8566;
    private const double ParisLon = 2.3522;
    private const double TromsoLat = 69.6492;
    private const double TromsoLon = 18.9553;

    private static readonly TimeSpan s_tolerance = TimeSpan.FromMinutes(2);
    private static readonly TimeZoneInfo s_paris = TimeZoneInfo.FindSystemTimeZoneById("Europe/Paris");

    [Theory]
    [InlineData("dawn_nautical", "2026-06-21T02:03:31Z")]
    [InlineData("dawn_civil", "2026-06-21T03:04:16Z")]
    [InlineData("sunrise", "2026-06-21T03:46:58Z")]
    [InlineData("solar_noon", "2026-06-21T11:52:24Z")]
    [InlineData("sunset", "2026-06-21T19:57:49Z")]
    [InlineData("dusk_civil", "2026-06-21T20:40:31Z")]
    [InlineData("dusk_nautical", "2026-06-21T21:41:16Z")]
    public void Paris_Solstice_EventsWithinTwoMinutes(string @event, string expected)
    {
        var schedule = new SolarSchedule(@event, ParisLat, ParisLon);

        DateTimeOffset? next = schedule.NextAfter(At("2026-06-21T00:00:00Z"), TimeZoneInfo.Utc);

        AssertNear(At(expected), next);
    }

    [Fact]
    public void Paris_SunriseAndSunset_InTheEntrysZone_AreThePublishedLocalTimes()
    {
        DateTimeOffset sunrise = new SolarSchedule("sunrise", ParisLat, ParisLon).NextAfter(At("2026-06-20T22:00:00Z"), s_paris)!.Value;
        DateTimeOffset sunset = new SolarSchedule("sunset", ParisLat, ParisLon).NextAfter(At("2026-06-20T22:00:00Z"), s_paris)!.Value;

        Assert.Equal(TimeSpan.FromHours(2), sunrise.Offset);
        AssertNear(new DateTimeOffset(2026, 6, 21, 5, 47, 0, TimeSpan.FromHours(2)), sunrise);
        AssertNear(new DateTimeOffset(2026, 6, 21, 21, 58, 0, TimeSpan.FromHours(2)), sunset);
    }

    [Theory]
    [InlineData("sunrise", -33.8688, 151.2093, "2026-03-20T00:00:00Z", "2026-03-20T19:58:43Z")]
    [InlineData("sunset", -33.8688, 151.2093, "2026-03-20T00:00:00Z", "2026-03-20T08:06:56Z")]
    [InlineData("sunrise", 21.3069, -157.8583, "2026-09-23T00:00:00Z", "2026-09-23T16:20:35Z")]
    [InlineData("sunset", 21.3069, -157.8583, "2026-09-23T00:00:00Z", "2026-09-23T04:27:22Z")]
    [InlineData("sunrise", ParisLat, ParisLon, "2026-12-21T00:00:00Z", "2026-12-21T07:41:13Z")]
    [InlineData("sunset", ParisLat, ParisLon, "2026-12-21T00:00:00Z", "2026-12-21T15:56:04Z")]
    [InlineData("sunrise", ParisLat, ParisLon, "2026-03-20T00:00:00Z", "2026-03-20T05:53:42Z")]
    public void OtherPlacesAndSeasons_WithinTwoMinutes(string @event, double lat, double lon, string after, string expected)
    {
        // Sydney and Honolulu: a southern latitude, and longitudes where the UTC day and the local day differ.
        AssertNear(At(expected), new SolarSchedule(@event, lat, lon).NextAfter(At(after), TimeZoneInfo.Utc));
    }

    [Fact]
    public void NextAfter_IsStrictlyAfter_AndMovesToTheNextDay()
    {
        var sunrise = new SolarSchedule("sunrise", ParisLat, ParisLon);

        DateTimeOffset first = sunrise.NextAfter(At("2026-06-21T00:00:00Z"), TimeZoneInfo.Utc)!.Value;
        DateTimeOffset second = sunrise.NextAfter(first, TimeZoneInfo.Utc)!.Value;

        Assert.True(second > first);
        AssertNear(first.AddDays(1), second);
        Assert.Equal(0, first.Millisecond);
    }

    [Fact]
    public void PolarNight_Tromso_NoSunriseInDecember_NextIsInMidJanuary()
    {
        var sunrise = new SolarSchedule("sunrise", TromsoLat, TromsoLon);
        var noon = new SolarSchedule("solar_noon", TromsoLat, TromsoLon);
        var civilDawn = new SolarSchedule("dawn_civil", TromsoLat, TromsoLon);

        DateTimeOffset? next = sunrise.NextAfter(At("2026-12-01T00:00:00Z"), TimeZoneInfo.Utc);

        // ephem: the first sunrise after the polar night is on 15 January 2027 at 10:34:32 UTC.
        AssertNear(At("2027-01-15T10:34:32Z"), next);

        // Transit and civil twilight still happen every day of the polar night.
        AssertNear(At("2026-12-01T10:33:09Z"), noon.NextAfter(At("2026-12-01T00:00:00Z"), TimeZoneInfo.Utc));
        AssertNear(At("2026-12-01T07:49:26Z"), civilDawn.NextAfter(At("2026-12-01T00:00:00Z"), TimeZoneInfo.Utc));
    }

    [Theory]
    // Midnight sun at Tromsø: the first sunset is late July (a grazing one, near midnight).
    [InlineData("sunset", TromsoLat, TromsoLon, "2026-07-25T22:36:15Z")]
    // Paris at midsummer never gets 18 degrees dark: the first astronomical dusk and dawn are at the turn of July.
    [InlineData("dusk_astronomical", ParisLat, ParisLon, "2026-06-30T23:45:38Z")]
    [InlineData("dawn_astronomical", ParisLat, ParisLon, "2026-07-01T00:03:15Z")]
    public void DaysWithoutTheEvent_AreSkipped_ToTheFirstDayWithIt(string @event, double lat, double lon, string expected)
    {
        // Expected times are ephem's; these grazing events are where a sloppy declination would be a day off.
        AssertNear(At(expected), new SolarSchedule(@event, lat, lon).NextAfter(At("2026-06-21T00:00:00Z"), TimeZoneInfo.Utc));
    }

    [Fact]
    public void NorthPole_HasNoSunriseInAYear_SoNull()
    {
        // At the pole the sun's hour angle is undefined: the schedule finds no day with the event and stops.
        Assert.Null(new SolarSchedule("sunrise", 90, 0).NextAfter(At("2026-06-21T00:00:00Z"), TimeZoneInfo.Utc));
    }

    [Theory]
    [InlineData("moonrise", 0, 0, "solar event 'moonrise' is invalid")]
    [InlineData("Sunrise", 0, 0, "solar event 'Sunrise' is invalid")]
    [InlineData("sunrise", 90.5, 0, "latitude 90.5 is invalid")]
    [InlineData("sunrise", -91, 0, "latitude -91 is invalid")]
    [InlineData("sunrise", 0, 180.1, "longitude 180.1 is invalid")]
    [InlineData("sunrise", 0, -181, "longitude -181 is invalid")]
    [InlineData("sunrise", double.NaN, 0, "latitude NaN is invalid")]
    public void BadEventOrPlace_IsAFormatException(string @event, double lat, double lon, string why)
    {
        FormatException e = Assert.Throws<FormatException>(() => new SolarSchedule(@event, lat, lon));

        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_RoundTrips_AndReprIsCelerys()
    {
        const string json = """{"type":"solar","event":"sunrise","lat":48.85,"lon":2.35}""";

        SolarSchedule schedule = Assert.IsType<SolarSchedule>(BeatSchedule.FromJson(JsonAssert.Parse(json)));
        SolarSchedule again = Assert.IsType<SolarSchedule>(BeatSchedule.FromJson(JsonAssert.Parse(schedule.ToJson())));

        JsonAssert.Equal(JsonAssert.Parse(json), JsonAssert.Parse(schedule.ToJson()));
        Assert.Equal("sunrise", again.Event);
        Assert.Equal(48.85, again.Latitude);
        Assert.Equal(2.35, again.Longitude);
        Assert.Equal("solar", again.Kind);
        Assert.Equal("<solar: sunrise at latitude 48.85, longitude: 2.35>", again.ToString());
        Assert.Equal(schedule.NextAfter(At("2026-06-21T00:00:00Z"), s_paris), again.NextAfter(At("2026-06-21T00:00:00Z"), s_paris));
    }

    [Fact]
    public void Json_BadShapes_AreFormatExceptions()
    {
        Assert.Throws<FormatException>(() => SolarSchedule.Read(JsonAssert.Parse("""{"type":"solar","lat":1,"lon":2}""")));
        Assert.Throws<FormatException>(() => SolarSchedule.Read(JsonAssert.Parse("""{"type":"solar","event":"sunset","lon":2}""")));
        Assert.Throws<FormatException>(() => SolarSchedule.Read(JsonAssert.Parse("""{"type":"solar","event":"sunset","lat":true,"lon":2}""")));
        Assert.Throws<FormatException>(() => BeatSchedule.FromJson(JsonAssert.Parse("""{"type":"solar","event":"sunset","lat":95,"lon":2}""")));

        // Decimals kept as strings (django-celery-beat's) are read as numbers.
        Assert.Equal(-33.87, SolarSchedule.Read(JsonAssert.Parse("""{"type":"solar","event":"sunset","lat":"-33.87","lon":"151.21"}""")).Latitude);
    }

    private static DateTimeOffset At(string iso) => DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private static void AssertNear(DateTimeOffset expected, DateTimeOffset? actual)
    {
        Assert.NotNull(actual);
        TimeSpan error = (actual.Value - expected).Duration();
        Assert.True(error <= s_tolerance, $"expected {expected:O} within {s_tolerance}, got {actual.Value:O} ({error.TotalSeconds:0} s off)");
    }
}
