using Celeriac.Transport;

namespace Celeriac.Tests.Transport;

/// <summary>A consume loop's catch-up bookkeeping: which take a catch-up waits for, and how a waiting loop hears of it.</summary>
public sealed class ConsumeCatchUpTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WaitAsync_AskedAfterTheLoopFoundNothingAndCheckedPending_WakesTheLoop()
    {
        var catchUp = new ConsumeCatchUp(new PrefetchWindow(4));

        // The loop's order: begin a take (reading the wake-up), find nothing, check for a catch-up, then wait.
        long take = catchUp.BeginTake(out Task asked);
        catchUp.Met(take);
        Assert.False(catchUp.Pending);

        // Asked between the loop's check and its wait: the task it read before taking must wake it.
        Task met = catchUp.WaitAsync(Ct);

        Assert.True(asked.IsCompleted, "the loop would sleep until the broker next woke it");
        Assert.True(catchUp.Pending);
        catchUp.Met(catchUp.BeginTake());
        await met.WaitAsync(s_wait, Ct);
        Assert.False(catchUp.Pending);
    }

    [Fact]
    public async Task WaitAsync_WaitsForATakeBegunAfterIt_NotOneAlreadyUnderWay()
    {
        var catchUp = new ConsumeCatchUp(new PrefetchWindow(4));
        long underWay = catchUp.BeginTake();

        Task met = catchUp.WaitAsync(Ct);
        catchUp.Met(underWay);

        Assert.True(catchUp.Pending, "met by a take that had begun before it was asked");
        catchUp.Met(catchUp.BeginTake());
        await met.WaitAsync(s_wait, Ct);
    }

    [Fact]
    public void WaitAsync_WindowFull_CompletesAtOnce()
    {
        var window = new PrefetchWindow(2);
        var catchUp = new ConsumeCatchUp(window);
        window.Take(2);

        Assert.True(catchUp.WaitAsync(Ct).IsCompletedSuccessfully);
        Assert.False(catchUp.Pending);
    }

    [Fact]
    public async Task Ended_MeetsEveryWaitingCatchUp()
    {
        var catchUp = new ConsumeCatchUp(new PrefetchWindow(4));
        Task first = catchUp.WaitAsync(Ct);
        Task second = catchUp.WaitAsync(Ct);

        catchUp.Ended();

        await Task.WhenAll(first, second).WaitAsync(s_wait, Ct);
    }
}
