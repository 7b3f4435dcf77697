using System.Globalization;
using System.Text;
using Celeriac.Protocol;

namespace Celeriac.Tests.Protocol;

/// <summary><c>date_done</c>'s hand-written formatter writes what the format string writes, for any time.</summary>
public sealed class DateDoneFormatTests
{
    public static TheoryData<long> Times
    {
        get
        {
            var data = new TheoryData<long>
            {
                DateTime.MinValue.Ticks,
                DateTime.MaxValue.Ticks,
                new DateTime(2026, 12, 5, 4, 27, 38, DateTimeKind.Utc).Ticks + 1,
                new DateTime(1999, 1, 9, 23, 59, 59, DateTimeKind.Utc).Ticks + 9_999_999,
            };
            var random = new Random(12);
            for (int i = 0; i < 200; i++)
            {
                data.Add(random.NextInt64(DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks));
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Times))]
    public void WriteDateDone_WritesWhatTheFormatStringWrites(long ticks)
    {
        var time = new DateTime(ticks, DateTimeKind.Utc);
        Span<byte> text = stackalloc byte[CeleryJson.DateDoneLength];

        int length = CeleryJson.WriteDateDone(time, text);

        Assert.Equal(time.ToString(CeleryJson.DateDoneFormat, CultureInfo.InvariantCulture), Encoding.UTF8.GetString(text[..length]));
    }
}
