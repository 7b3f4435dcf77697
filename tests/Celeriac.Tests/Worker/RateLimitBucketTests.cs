using System.Text.Json;
using Celeriac.Worker;
using Microsoft.Extensions.Time.Testing;

namespace Celeriac.Tests.Worker;

/// <summary>Celery's rate strings and the token bucket, on fake time.</summary>
public sealed class RateLimitBucketTests
{
    [Theory]
    [InlineData("100/s", 100)]
    [InlineData("10/m", 10 / 60.0)]
    [InlineData("1000/h", 1000 / 3600.0)]
    [InlineData("0.5/s", 0.5)]
    [InlineData("7", 7)]
    [InlineData(" 2 /m", 2 / 60.0)]
    [InlineData("", 0)]
    [InlineData(null, 0)]
    [InlineData("0", 0)]
    [InlineData("0/m", 0)]
    public void RateText_CeleryForms_TasksPerSecond(string? text, double expected)
    {
        Assert.True(RateText.TryParse(text, out double perSecond, out string? error), error);
        Assert.Equal(expected, perSecond, 9);
    }

    [Theory]
    [InlineData("abc/s", "Invalid rate limit string: ValueError(\"could not convert string to float: 'abc'\")")]
    [InlineData("5/x", "KeyError('x')")]
    [InlineData("5/sec", "KeyError('sec')")]
    [InlineData("-1/s", null)]
    [InlineData("nan", null)]
    public void RateText_BadRate_RefusedWithCelerysError(string text, string? expected)
    {
        Assert.False(RateText.TryParse(text, out _, out string? error));
        if (expected is not null)
        {
            Assert.Equal(expected, error);
        }
    }

    [Theory]
    [InlineData("null", true, 0)]
    [InlineData("\"\"", true, 0)]
    [InlineData("0", true, 0)]
    [InlineData("\"0\"", false, 0)]
    [InlineData("7", false, 7)]
    [InlineData("\"10/m\"", false, 10 / 60.0)]
    public void RateText_ControlArgument_StringNumberOrNull(string json, bool disables, double expected)
    {
        using var doc = JsonDocument.Parse(json);
        Assert.True(RateText.TryParse(doc.RootElement, out double perSecond, out bool off, out string? error), error);
        Assert.Equal(disables, off);
        Assert.Equal(expected, perSecond, 9);
    }

    [Fact]
    public void TryPass_CapacityOne_OneAtOnceThenOnePerInterval()
    {
        var time = new FakeTimeProvider();
        var bucket = new TaskBucket<int>(10, time);

        Assert.True(bucket.TryPass());
        Assert.False(bucket.TryPass());
        time.Advance(TimeSpan.FromMilliseconds(60));
        Assert.False(bucket.TryPass());
        time.Advance(TimeSpan.FromMilliseconds(40));
        Assert.True(bucket.TryPass());

        // Idle for a long time: still one token, not a burst.
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(bucket.TryPass());
        Assert.False(bucket.TryPass());
    }

    [Fact]
    public async Task PumpAsync_HeldTasks_WaitForATokenThenAllGoInOrderWhenTheLimitIsRemoved()
    {
        var time = new FakeTimeProvider();
        var bucket = new TaskBucket<int>(1 / 3600.0, time);
        var released = new List<int>();
        Assert.True(bucket.TryPass());
        Assert.True(bucket.Hold(1));
        Assert.False(bucket.Hold(2));
        bucket.Hold(3);
        bucket.Hold(4);
        using var stop = new CancellationTokenSource();
        Task pump = bucket.PumpAsync(i =>
        {
            lock (released)
            {
                released.Add(i);
            }
        }, stop.Token);

        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.Equal((0, 4), (Count(released), bucket.HeldCount));

        bucket.SetRate(0);
        await pump.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.Equal([1, 2, 3, 4], released);
        Assert.False(bucket.IsLimited);
    }

    private static int Count(List<int> list)
    {
        lock (list)
        {
            return list.Count;
        }
    }
}
