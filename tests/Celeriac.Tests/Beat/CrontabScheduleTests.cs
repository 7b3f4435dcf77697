using System.Globalization;
using System.Text.Json;
using Celeriac.Beat;
using Celeriac.Tests.Support;
using Cronos;

namespace Celeriac.Tests.Beat;

/// <summary>
/// Celery's crontab on fixed instants. The expected runs in the docs table and the day-rule cases are what Celery 5.2's
/// own <c>crontab(...).remaining_delta</c> gives from the same instants, each run fed back as the last run (UTC).
/// </summary>
public sealed class CrontabScheduleTests
{
    // A Wednesday, mid-morning, mid-minute; and the last minute of a year.
    private const string Wednesday = "2026-03-04T10:20:30Z";
    private const string YearEnd = "2026-12-31T23:59:00Z";

    private static readonly TimeZoneInfo s_paris = TimeZoneInfo.FindSystemTimeZoneById("Europe/Paris");
    private static readonly TimeZoneInfo s_newYork = TimeZoneInfo.FindSystemTimeZoneById("America/New_York");

    [Theory]
    // crontab()
    [InlineData("*", "*", "*", "*", "*", Wednesday, "2026-03-04T10:21, 2026-03-04T10:22, 2026-03-04T10:23, 2026-03-04T10:24")]
    [InlineData("*", "*", "*", "*", "*", YearEnd, "2027-01-01T00:00, 2027-01-01T00:01, 2027-01-01T00:02, 2027-01-01T00:03")]
    // crontab(minute=0, hour=0)
    [InlineData("0", "0", "*", "*", "*", Wednesday, "2026-03-05T00:00, 2026-03-06T00:00, 2026-03-07T00:00, 2026-03-08T00:00")]
    [InlineData("0", "0", "*", "*", "*", YearEnd, "2027-01-01T00:00, 2027-01-02T00:00, 2027-01-03T00:00, 2027-01-04T00:00")]
    // crontab(minute=0, hour='*/3')
    [InlineData("0", "*/3", "*", "*", "*", Wednesday, "2026-03-04T12:00, 2026-03-04T15:00, 2026-03-04T18:00, 2026-03-04T21:00")]
    [InlineData("0", "*/3", "*", "*", "*", YearEnd, "2027-01-01T00:00, 2027-01-01T03:00, 2027-01-01T06:00, 2027-01-01T09:00")]
    // crontab(minute=0, hour='0,3,6,9,12,15,18,21')
    [InlineData("0", "0,3,6,9,12,15,18,21", "*", "*", "*", Wednesday, "2026-03-04T12:00, 2026-03-04T15:00, 2026-03-04T18:00, 2026-03-04T21:00")]
    [InlineData("0", "0,3,6,9,12,15,18,21", "*", "*", "*", YearEnd, "2027-01-01T00:00, 2027-01-01T03:00, 2027-01-01T06:00, 2027-01-01T09:00")]
    // crontab(minute='*/15')
    [InlineData("*/15", "*", "*", "*", "*", Wednesday, "2026-03-04T10:30, 2026-03-04T10:45, 2026-03-04T11:00, 2026-03-04T11:15")]
    [InlineData("*/15", "*", "*", "*", "*", YearEnd, "2027-01-01T00:00, 2027-01-01T00:15, 2027-01-01T00:30, 2027-01-01T00:45")]
    // crontab(day_of_week='sunday'): every minute of Sundays
    [InlineData("*", "*", "sunday", "*", "*", Wednesday, "2026-03-08T00:00, 2026-03-08T00:01, 2026-03-08T00:02, 2026-03-08T00:03")]
    [InlineData("*", "*", "sunday", "*", "*", YearEnd, "2027-01-03T00:00, 2027-01-03T00:01, 2027-01-03T00:02, 2027-01-03T00:03")]
    // crontab(minute='*', hour='*', day_of_week='sun')
    [InlineData("*", "*", "sun", "*", "*", Wednesday, "2026-03-08T00:00, 2026-03-08T00:01, 2026-03-08T00:02, 2026-03-08T00:03")]
    [InlineData("*", "*", "sun", "*", "*", YearEnd, "2027-01-03T00:00, 2027-01-03T00:01, 2027-01-03T00:02, 2027-01-03T00:03")]
    // crontab(minute='*/10', hour='3,17,22', day_of_week='thu,fri')
    [InlineData("*/10", "3,17,22", "thu,fri", "*", "*", Wednesday, "2026-03-05T03:00, 2026-03-05T03:10, 2026-03-05T03:20, 2026-03-05T03:30")]
    [InlineData("*/10", "3,17,22", "thu,fri", "*", "*", YearEnd, "2027-01-01T03:00, 2027-01-01T03:10, 2027-01-01T03:20, 2027-01-01T03:30")]
    // crontab(minute=0, hour='*/2,*/3')
    [InlineData("0", "*/2,*/3", "*", "*", "*", Wednesday, "2026-03-04T12:00, 2026-03-04T14:00, 2026-03-04T15:00, 2026-03-04T16:00")]
    [InlineData("0", "*/2,*/3", "*", "*", "*", YearEnd, "2027-01-01T00:00, 2027-01-01T02:00, 2027-01-01T03:00, 2027-01-01T04:00")]
    // crontab(minute=0, hour='*/5')
    [InlineData("0", "*/5", "*", "*", "*", Wednesday, "2026-03-04T15:00, 2026-03-04T20:00, 2026-03-05T00:00, 2026-03-05T05:00")]
    [InlineData("0", "*/5", "*", "*", "*", YearEnd, "2027-01-01T00:00, 2027-01-01T05:00, 2027-01-01T10:00, 2027-01-01T15:00")]
    // crontab(minute=0, hour='*/3,8-17')
    [InlineData("0", "*/3,8-17", "*", "*", "*", Wednesday, "2026-03-04T11:00, 2026-03-04T12:00, 2026-03-04T13:00, 2026-03-04T14:00")]
    [InlineData("0", "*/3,8-17", "*", "*", "*", YearEnd, "2027-01-01T00:00, 2027-01-01T03:00, 2027-01-01T06:00, 2027-01-01T08:00")]
    // crontab(0, 0, day_of_month='2')
    [InlineData("0", "0", "*", "2", "*", Wednesday, "2026-04-02T00:00, 2026-05-02T00:00, 2026-06-02T00:00, 2026-07-02T00:00")]
    [InlineData("0", "0", "*", "2", "*", YearEnd, "2027-01-02T00:00, 2027-02-02T00:00, 2027-03-02T00:00, 2027-04-02T00:00")]
    // crontab(0, 0, day_of_month='2-30/2')
    [InlineData("0", "0", "*", "2-30/2", "*", Wednesday, "2026-03-06T00:00, 2026-03-08T00:00, 2026-03-10T00:00, 2026-03-12T00:00")]
    [InlineData("0", "0", "*", "2-30/2", "*", YearEnd, "2027-01-02T00:00, 2027-01-04T00:00, 2027-01-06T00:00, 2027-01-08T00:00")]
    // crontab(0, 0, day_of_month='1-7,15-21')
    [InlineData("0", "0", "*", "1-7,15-21", "*", Wednesday, "2026-03-05T00:00, 2026-03-06T00:00, 2026-03-07T00:00, 2026-03-15T00:00")]
    [InlineData("0", "0", "*", "1-7,15-21", "*", YearEnd, "2027-01-01T00:00, 2027-01-02T00:00, 2027-01-03T00:00, 2027-01-04T00:00")]
    // crontab(0, 0, day_of_month='11', month_of_year='5')
    [InlineData("0", "0", "*", "11", "5", Wednesday, "2026-05-11T00:00, 2027-05-11T00:00, 2028-05-11T00:00, 2029-05-11T00:00")]
    [InlineData("0", "0", "*", "11", "5", YearEnd, "2027-05-11T00:00, 2028-05-11T00:00, 2029-05-11T00:00, 2030-05-11T00:00")]
    // crontab(0, 0, month_of_year='*/3'): every day of January, April, July and October
    [InlineData("0", "0", "*", "*", "*/3", Wednesday, "2026-04-01T00:00, 2026-04-02T00:00, 2026-04-03T00:00, 2026-04-04T00:00")]
    [InlineData("0", "0", "*", "*", "*/3", YearEnd, "2027-01-01T00:00, 2027-01-02T00:00, 2027-01-03T00:00, 2027-01-04T00:00")]
    public void DocsTable_RunsAsCeleryReckonsThem(string minute, string hour, string dayOfWeek, string dayOfMonth, string monthOfYear, string start, string expected)
    {
        var schedule = new CrontabSchedule(minute, hour, dayOfWeek, dayOfMonth, monthOfYear);

        Assert.Equal(expected, Runs(schedule, start, 4, TimeZoneInfo.Utc));
    }

    [Theory]
    // The first Monday of the month (day_of_month='1-7', day_of_week='mon'), not the 1st to 7th and every Monday.
    [InlineData("0", "9", "mon", "1-7", "*", Wednesday, "2026-04-06T09:00, 2026-05-04T09:00, 2026-06-01T09:00, 2026-07-06T09:00")]
    [InlineData("0", "9", "mon", "1-7", "*", YearEnd, "2027-01-04T09:00, 2027-02-01T09:00, 2027-03-01T09:00, 2027-04-05T09:00")]
    // Friday the 13th.
    [InlineData("0", "0", "fri", "13", "*", Wednesday, "2026-03-13T00:00, 2026-11-13T00:00, 2027-08-13T00:00, 2028-10-13T00:00")]
    [InlineData("0", "0", "fri", "13", "*", YearEnd, "2027-08-13T00:00, 2028-10-13T00:00, 2029-04-13T00:00, 2029-07-13T00:00")]
    // The 31st: months of 30 days (and February) are skipped.
    [InlineData("0", "0", "*", "31", "*", Wednesday, "2026-03-31T00:00, 2026-05-31T00:00, 2026-07-31T00:00, 2026-08-31T00:00")]
    [InlineData("0", "0", "*", "31", "*", YearEnd, "2027-01-31T00:00, 2027-03-31T00:00, 2027-05-31T00:00, 2027-07-31T00:00")]
    // 29 February: leap years only.
    [InlineData("0", "0", "*", "29", "2", Wednesday, "2028-02-29T00:00, 2032-02-29T00:00, 2036-02-29T00:00, 2040-02-29T00:00")]
    public void DayRules_MonthAndDayOfMonthAndDayOfWeekMustAllMatch(string minute, string hour, string dayOfWeek, string dayOfMonth, string monthOfYear, string start, string expected)
    {
        var schedule = new CrontabSchedule(minute, hour, dayOfWeek, dayOfMonth, monthOfYear);

        Assert.Equal(expected, Runs(schedule, start, 4, TimeZoneInfo.Utc));
    }

    [Fact]
    public void Cronos_AndsDayOfMonthWithDayOfWeek_UnlikeVixieCron()
    {
        // What the wrapping relies on: Cronos requires both restricted day fields to match (Vixie cron would run on the
        // 13th and on every Friday, so the first run after 4 March 2026 would be Friday the 6th).
        CronExpression fridayThe13th = CronExpression.Parse("0 0 13 * 5");

        DateTimeOffset? first = fridayThe13th.GetNextOccurrence(At(Wednesday), TimeZoneInfo.Utc);
        DateTimeOffset? second = fridayThe13th.GetNextOccurrence(first!.Value, TimeZoneInfo.Utc);

        Assert.Equal(At("2026-03-13T00:00:00Z"), first);
        Assert.Equal(At("2026-11-13T00:00:00Z"), second);
    }

    [Fact]
    public void NextAfter_IsStrictlyAfter_AnInstantThatIsARun()
    {
        var everyQuarter = new CrontabSchedule(minute: "*/15");

        Assert.Equal(At("2026-03-04T10:45:00Z"), everyQuarter.NextAfter(At("2026-03-04T10:30:00Z"), TimeZoneInfo.Utc));
        Assert.Equal(At("2026-03-04T10:30:00Z"), everyQuarter.NextAfter(At("2026-03-04T10:29:59.999Z"), TimeZoneInfo.Utc));
    }

    [Fact]
    public void NextAfter_ReckonsInTheEntrysZone_AndGivesItsOffset()
    {
        var midnight = new CrontabSchedule(minute: "0", hour: "0");

        DateTimeOffset? paris = midnight.NextAfter(At(Wednesday), s_paris);
        DateTimeOffset? newYork = midnight.NextAfter(At(Wednesday), s_newYork);

        Assert.Equal(new DateTimeOffset(2026, 3, 5, 0, 0, 0, TimeSpan.FromHours(1)), paris);
        Assert.Equal(TimeSpan.FromHours(1), paris!.Value.Offset);
        Assert.Equal(new DateTimeOffset(2026, 3, 5, 0, 0, 0, TimeSpan.FromHours(-5)), newYork);
        Assert.Equal(TimeSpan.FromHours(-5), newYork!.Value.Offset);
    }

    [Fact]
    public void SpringForward_Paris_0230DailyRunsOnceAtTheFirstTimeAfterTheGap()
    {
        // 29 March 2026: 02:00 CET becomes 03:00 CEST, so 02:30 does not exist that day.
        var daily = new CrontabSchedule(minute: "30", hour: "2");

        List<DateTimeOffset> runs = RunList(daily, At("2026-03-28T12:00:00Z"), 3, s_paris);

        Assert.Equal(
            [
                new DateTimeOffset(2026, 3, 29, 3, 0, 0, TimeSpan.FromHours(2)),
                new DateTimeOffset(2026, 3, 30, 2, 30, 0, TimeSpan.FromHours(2)),
                new DateTimeOffset(2026, 3, 31, 2, 30, 0, TimeSpan.FromHours(2)),
            ],
            runs);
        AssertOffsets(runs, TimeSpan.FromHours(2), TimeSpan.FromHours(2), TimeSpan.FromHours(2));

        // An interval entry whose runs all fall in the gap (02:00 and 02:30) runs once, at 03:00.
        Assert.Equal(
            [
                new DateTimeOffset(2026, 3, 29, 3, 0, 0, TimeSpan.FromHours(2)),
                new DateTimeOffset(2026, 3, 30, 2, 0, 0, TimeSpan.FromHours(2)),
                new DateTimeOffset(2026, 3, 30, 2, 30, 0, TimeSpan.FromHours(2)),
            ],
            RunList(new CrontabSchedule(minute: "*/30", hour: "2"), At("2026-03-28T12:00:00Z"), 3, s_paris));
    }

    [Fact]
    public void FallBack_Paris_0230DailyRunsOnce_IntervalEntryRunsThroughBothPasses()
    {
        // 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:00-02:59 happens twice.
        var daily = new CrontabSchedule(minute: "30", hour: "2");
        var halfHourly = new CrontabSchedule(minute: "*/30", hour: "2");

        List<DateTimeOffset> dailyRuns = RunList(daily, At("2026-10-24T12:00:00Z"), 3, s_paris);
        List<DateTimeOffset> halfHourlyRuns = RunList(halfHourly, At("2026-10-24T12:00:00Z"), 5, s_paris);

        Assert.Equal(
            [
                new DateTimeOffset(2026, 10, 25, 2, 30, 0, TimeSpan.FromHours(2)),
                new DateTimeOffset(2026, 10, 26, 2, 30, 0, TimeSpan.FromHours(1)),
                new DateTimeOffset(2026, 10, 27, 2, 30, 0, TimeSpan.FromHours(1)),
            ],
            dailyRuns);
        AssertOffsets(dailyRuns, TimeSpan.FromHours(2), TimeSpan.FromHours(1), TimeSpan.FromHours(1));
        Assert.Equal(
            [
                new DateTimeOffset(2026, 10, 25, 2, 0, 0, TimeSpan.FromHours(2)),
                new DateTimeOffset(2026, 10, 25, 2, 30, 0, TimeSpan.FromHours(2)),
                new DateTimeOffset(2026, 10, 25, 2, 0, 0, TimeSpan.FromHours(1)),
                new DateTimeOffset(2026, 10, 25, 2, 30, 0, TimeSpan.FromHours(1)),
                new DateTimeOffset(2026, 10, 26, 2, 0, 0, TimeSpan.FromHours(1)),
            ],
            halfHourlyRuns);
    }

    [Fact]
    public void SpringForward_NewYork_0230DailyRunsOnceAtTheFirstTimeAfterTheGap()
    {
        // 8 March 2026: 02:00 EST becomes 03:00 EDT.
        var daily = new CrontabSchedule(minute: "30", hour: "2");

        List<DateTimeOffset> runs = RunList(daily, At("2026-03-07T12:00:00Z"), 3, s_newYork);

        Assert.Equal(
            [
                new DateTimeOffset(2026, 3, 8, 3, 0, 0, TimeSpan.FromHours(-4)),
                new DateTimeOffset(2026, 3, 9, 2, 30, 0, TimeSpan.FromHours(-4)),
                new DateTimeOffset(2026, 3, 10, 2, 30, 0, TimeSpan.FromHours(-4)),
            ],
            runs);
        AssertOffsets(runs, TimeSpan.FromHours(-4), TimeSpan.FromHours(-4), TimeSpan.FromHours(-4));
    }

    [Fact]
    public void FallBack_NewYork_0130DailyRunsOnce_HourlyEntryRunsInBothPasses()
    {
        // 1 November 2026: 02:00 EDT becomes 01:00 EST, so 01:00-01:59 happens twice.
        var daily = new CrontabSchedule(minute: "30", hour: "1");
        var hourly = new CrontabSchedule(minute: "0");

        List<DateTimeOffset> dailyRuns = RunList(daily, At("2026-10-31T12:00:00Z"), 3, s_newYork);
        List<DateTimeOffset> hourlyRuns = RunList(hourly, At("2026-11-01T03:30:00Z"), 4, s_newYork);

        Assert.Equal(
            [
                new DateTimeOffset(2026, 11, 1, 1, 30, 0, TimeSpan.FromHours(-4)),
                new DateTimeOffset(2026, 11, 2, 1, 30, 0, TimeSpan.FromHours(-5)),
                new DateTimeOffset(2026, 11, 3, 1, 30, 0, TimeSpan.FromHours(-5)),
            ],
            dailyRuns);
        AssertOffsets(dailyRuns, TimeSpan.FromHours(-4), TimeSpan.FromHours(-5), TimeSpan.FromHours(-5));

        // 03:30Z is 23:30 EDT on 31 October.
        Assert.Equal(
            [
                new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.FromHours(-4)),
                new DateTimeOffset(2026, 11, 1, 1, 0, 0, TimeSpan.FromHours(-4)),
                new DateTimeOffset(2026, 11, 1, 1, 0, 0, TimeSpan.FromHours(-5)),
                new DateTimeOffset(2026, 11, 1, 2, 0, 0, TimeSpan.FromHours(-5)),
            ],
            hourlyRuns);
        AssertOffsets(hourlyRuns, TimeSpan.FromHours(-4), TimeSpan.FromHours(-4), TimeSpan.FromHours(-5), TimeSpan.FromHours(-5));
    }

    [Theory]
    // Names by their first three letters in any case, as Celery's weekday(); Sunday is 0.
    [InlineData("day_of_week", "mon-fri", "1,2,3,4,5")]
    [InlineData("day_of_week", "sunday", "0")]
    [InlineData("day_of_week", "Sun,SAT", "0,6")]
    [InlineData("day_of_week", "thursday,friday", "4,5")]
    [InlineData("day_of_week", "*/2", "0,2,4,6")]
    // Reversed ranges wrap past the field's end, as Celery's crontab_parser.
    [InlineData("day_of_week", "fri-mon", "0,1,5,6")]
    [InlineData("hour", "22-2", "0,1,2,22,23")]
    // The step is taken over the wrapped list: 50,55,0,5,10.
    [InlineData("minute", "50-10/5", "0,5,10,50,55")]
    [InlineData("minute", "*/100", "0")]
    [InlineData("minute", "1,13,30-45/5,50-59/4", "1,13,30,35,40,45,50,54,58")]
    [InlineData("minute", "*,5", "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59")]
    [InlineData("hour", "0,8-17/2", "0,8,10,12,14,16")]
    [InlineData("day_of_month", "*/3", "1,4,7,10,13,16,19,22,25,28,31")]
    [InlineData("month_of_year", "2-12/2", "2,4,6,8,10,12")]
    [InlineData("month_of_year", "jan-mar,Dec", "1,2,3,12")]
    [InlineData("month_of_year", "nov-feb", "1,2,11,12")]
    [InlineData("month_of_year", "september", "9")]
    public void Grammar_ExpandsAsCelerysParser(string field, string text, string expected)
    {
        CrontabSchedule schedule = field switch
        {
            "minute" => new CrontabSchedule(minute: text),
            "hour" => new CrontabSchedule(hour: text),
            "day_of_week" => new CrontabSchedule(dayOfWeek: text),
            "day_of_month" => new CrontabSchedule(dayOfMonth: text),
            _ => new CrontabSchedule(monthOfYear: text),
        };
        IReadOnlyList<int> values = field switch
        {
            "minute" => schedule.Minutes,
            "hour" => schedule.Hours,
            "day_of_week" => schedule.DaysOfWeek,
            "day_of_month" => schedule.DaysOfMonth,
            _ => schedule.MonthsOfYear,
        };

        Assert.Equal(expected, string.Join(',', values));
    }

    [Fact]
    public void WeekdayRange_RunsMondayToFriday()
    {
        var weekdays = new CrontabSchedule(minute: "0", hour: "8", dayOfWeek: "mon-fri");

        // From Friday 6 March 2026 09:00: Monday, Tuesday, ..., Friday, then Monday again.
        Assert.Equal(
            "2026-03-09T08:00, 2026-03-10T08:00, 2026-03-11T08:00, 2026-03-12T08:00, 2026-03-13T08:00, 2026-03-16T08:00",
            Runs(weekdays, "2026-03-06T09:00:00Z", 6, TimeZoneInfo.Utc));
    }

    [Theory]
    [InlineData("minute", "61", "61 is more than 59")]
    [InlineData("minute", "*/0", "at least 1")]
    [InlineData("minute", "5/15", "a step needs '*' or a range")]
    [InlineData("minute", "1-2-3", "negative numbers")]
    [InlineData("minute", "-5", "negative numbers")]
    [InlineData("minute", "1,,2", "empty part")]
    [InlineData("minute", "", "empty")]
    [InlineData("minute", "mon", "'mon' is not a number")]
    [InlineData("hour", "24", "24 is more than 23")]
    [InlineData("hour", "*/", "step after '/' is empty")]
    [InlineData("hour", "*/x", "'x' is not a whole number")]
    [InlineData("day_of_week", "7", "7 is more than 6")]
    [InlineData("day_of_week", "funday", "'funday' is not a day name")]
    [InlineData("day_of_week", "jan", "'jan' is not a day name")]
    [InlineData("day_of_month", "0", "0 is less than 1")]
    [InlineData("day_of_month", "32", "32 is more than 31")]
    [InlineData("day_of_month", "1-40", "40 is more than 31")]
    [InlineData("month_of_year", "13", "13 is more than 12")]
    [InlineData("month_of_year", "foo", "'foo' is not a month name")]
    [InlineData("month_of_year", "0", "0 is less than 1")]
    public void BadField_IsAFormatException_NamingTheFieldAndWhy(string field, string text, string why)
    {
        FormatException e = Assert.Throws<FormatException>(() => field switch
        {
            "minute" => new CrontabSchedule(minute: text),
            "hour" => new CrontabSchedule(hour: text),
            "day_of_week" => new CrontabSchedule(dayOfWeek: text),
            "day_of_month" => new CrontabSchedule(dayOfMonth: text),
            _ => new CrontabSchedule(monthOfYear: text),
        });

        Assert.Contains($"crontab {field} '{text}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("* * * *", "not 4")]
    [InlineData("0 0 * * * *", "not 6")]
    [InlineData("daily", "not 1")]
    [InlineData("61 * * * *", "crontab minute '61'")]
    [InlineData("0 0 * * 7", "crontab day_of_week '7'")]
    [InlineData("0 0 * 13 *", "crontab month_of_year '13'")]
    [InlineData("0 0 32 * *", "crontab day_of_month '32'")]
    [InlineData("0 25 * * *", "crontab hour '25'")]
    public void FromString_BadText_IsAFormatException(string text, string why)
    {
        FormatException e = Assert.Throws<FormatException>(() => CrontabSchedule.FromString(text));

        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromString_ReadsCelerysOrder_MinuteHourDayOfMonthMonthDayOfWeek()
    {
        CrontabSchedule schedule = CrontabSchedule.FromString("*/10 3,17,22 1-7 */3 thu,fri");

        Assert.Equal("*/10", schedule.Minute);
        Assert.Equal("3,17,22", schedule.Hour);
        Assert.Equal("1-7", schedule.DayOfMonth);
        Assert.Equal("*/3", schedule.MonthOfYear);
        Assert.Equal("thu,fri", schedule.DayOfWeek);
        Assert.Equal("<crontab: */10 3,17,22 1-7 */3 thu,fri (m/h/dM/MY/d)>", schedule.ToString());
        Assert.Equal("<crontab: 0 3 * * * (m/h/dM/MY/d)>", CrontabSchedule.FromString("0 3 * * *").ToString());
        Assert.Equal("<crontab: 0 2 * * sun (m/h/dM/MY/d)>", new CrontabSchedule(minute: "0", hour: "2", dayOfWeek: "sun").ToString());
        Assert.Equal("crontab", schedule.Kind);
    }

    [Fact]
    public void CronosExpression_KeepsTheIntervalSignOnlyWhereCeleryTextHadIt()
    {
        Assert.Equal("0-0,15,30,45 * * * *", new CrontabSchedule(minute: "*/15").CronosExpression);
        Assert.Equal("30 2 * * *", new CrontabSchedule(minute: "30", hour: "2").CronosExpression);
        Assert.Equal("0,30 1,13 1-7,15-21 * 1", new CrontabSchedule("0,30", "1,13", "mon", "1-7,15-21").CronosExpression);
        Assert.Equal("0 0-2,22-23 * 1,4,7,10 0-1,5-6", new CrontabSchedule("0", "22-2", "fri-mon", "*", "*/3").CronosExpression);
    }

    [Fact]
    public void Json_RoundTrips_InCelerysKeywordShape()
    {
        const string json = """{"type":"crontab","minute":"*/15","hour":"*","day_of_week":"*","day_of_month":"*","month_of_year":"*"}""";

        BeatSchedule schedule = BeatSchedule.FromJson(JsonAssert.Parse(json));
        CrontabSchedule again = Assert.IsType<CrontabSchedule>(BeatSchedule.FromJson(JsonAssert.Parse(schedule.ToJson())));

        Assert.IsType<CrontabSchedule>(schedule);
        JsonAssert.Equal(JsonAssert.Parse(json), JsonAssert.Parse(schedule.ToJson()));
        Assert.Equal(schedule.ToString(), again.ToString());
        Assert.Equal(schedule.NextAfter(At(Wednesday), s_paris), again.NextAfter(At(Wednesday), s_paris));
    }

    [Fact]
    public void Json_TakesNumbersListsAndMissingFields_AsCelerysKeywordArguments()
    {
        CrontabSchedule schedule = CrontabSchedule.Read(JsonAssert.Parse("""{"type":"crontab","minute":0,"hour":[3,17],"day_of_week":null}"""));

        Assert.Equal("0", schedule.Minute);
        Assert.Equal("3,17", schedule.Hour);
        Assert.Equal("*", schedule.DayOfWeek);
        Assert.Equal("*", schedule.DayOfMonth);
        JsonAssert.Equal(
            JsonAssert.Parse("""{"type":"crontab","minute":"0","hour":"3,17","day_of_week":"*","day_of_month":"*","month_of_year":"*"}"""),
            JsonAssert.Parse(schedule.ToJson()));
        Assert.Throws<FormatException>(() => CrontabSchedule.Read(JsonAssert.Parse("""{"type":"crontab","minute":1.5}""")));
        Assert.Throws<FormatException>(() => CrontabSchedule.Read(JsonAssert.Parse("""{"type":"crontab","hour":["3"]}""")));
        Assert.Throws<FormatException>(() => CrontabSchedule.Read(JsonAssert.Parse("""{"type":"crontab","hour":true}""")));
        Assert.Throws<FormatException>(() => BeatSchedule.FromJson(JsonAssert.Parse("""{"type":"crontab","minute":"61"}""")));
    }

    [Fact]
    public void BeatScheduleParse_TakesAFiveFieldString_AsACrontab()
    {
        CrontabSchedule schedule = Assert.IsType<CrontabSchedule>(BeatSchedule.Parse("0 3 * * *"));
        CrontabSchedule fromJson = Assert.IsType<CrontabSchedule>(BeatSchedule.FromJson(JsonAssert.Parse("\"*/5 * * * mon-fri\"")));

        Assert.Equal(At("2026-03-05T03:00:00Z"), schedule.NextAfter(At(Wednesday), TimeZoneInfo.Utc));
        Assert.Equal(At("2026-03-04T10:25:00Z"), fromJson.NextAfter(At(Wednesday), TimeZoneInfo.Utc));
        Assert.Throws<FormatException>(() => BeatSchedule.Parse("every day"));
    }

    [Fact]
    public void RandomEntries_AgreeWithADayByDayScanOfCelerysRule()
    {
        // An oracle independent of Cronos: walk the days, keep those whose month, day of month AND day of week are all
        // in the entry, and take the first hour and minute after the instant.
        var random = new Random(15);
        for (int i = 0; i < 400; i++)
        {
            var schedule = new CrontabSchedule(
                minute: RandomField(random, 0, 59),
                hour: RandomField(random, 0, 23),
                dayOfWeek: RandomField(random, 0, 6),
                dayOfMonth: RandomField(random, 1, 31),
                monthOfYear: RandomField(random, 1, 12));
            var after = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero)
                .AddMinutes(random.Next(0, 20 * 366 * 24 * 60))
                .AddSeconds(random.Next(0, 2) * 30);

            Assert.True(
                Scan(schedule, after) == schedule.NextAfter(after, TimeZoneInfo.Utc),
                $"{schedule} after {after:O}: scan {Scan(schedule, after):O}, got {schedule.NextAfter(after, TimeZoneInfo.Utc):O}");
        }
    }

    private static string RandomField(Random random, int min, int max)
    {
        var parts = new List<string>();
        int count = random.Next(1, 3);
        for (int i = 0; i < count; i++)
        {
            int a = random.Next(min, max + 1);
            int b = random.Next(min, max + 1);
            parts.Add(random.Next(6) switch
            {
                0 => "*",
                1 => "*/" + random.Next(1, max),
                2 => $"{a}-{b}",
                3 => $"{a}-{b}/{random.Next(1, 4)}",
                _ => a.ToString(CultureInfo.InvariantCulture),
            });
        }

        return string.Join(',', parts);
    }

    private static DateTimeOffset? Scan(CrontabSchedule schedule, DateTimeOffset after)
    {
        DateTime day = after.UtcDateTime.Date;
        for (int d = 0; d < 60 * 366; d++, day = day.AddDays(1))
        {
            if (!schedule.MonthsOfYear.Contains(day.Month) || !schedule.DaysOfMonth.Contains(day.Day) || !schedule.DaysOfWeek.Contains((int)day.DayOfWeek))
            {
                continue;
            }

            foreach (int hour in schedule.Hours)
            {
                foreach (int minute in schedule.Minutes)
                {
                    var run = new DateTimeOffset(day.AddHours(hour).AddMinutes(minute), TimeSpan.Zero);
                    if (run > after)
                    {
                        return run;
                    }
                }
            }
        }

        return null;
    }

    private static DateTimeOffset At(string iso) => DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private static List<DateTimeOffset> RunList(BeatSchedule schedule, DateTimeOffset start, int count, TimeZoneInfo zone)
    {
        var runs = new List<DateTimeOffset>();
        DateTimeOffset at = start;
        for (int i = 0; i < count; i++)
        {
            at = schedule.NextAfter(at, zone) ?? throw new InvalidOperationException($"no run after {at:O}");
            runs.Add(at);
        }

        return runs;
    }

    private static string Runs(BeatSchedule schedule, string start, int count, TimeZoneInfo zone) =>
        string.Join(", ", RunList(schedule, At(start), count, zone).Select(r => r.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm", CultureInfo.InvariantCulture)));

    // DateTimeOffset equality compares instants only; the offset is what a person reads.
    private static void AssertOffsets(IReadOnlyList<DateTimeOffset> runs, params TimeSpan[] offsets) =>
        Assert.Equal(offsets, runs.Select(r => r.Offset));
}
