using Celeriac.Concurrency;

namespace Celeriac.Tests.Concurrency;

/// <summary>The batcher that gathers acks and results into round trips: order, grouping, errors, draining.</summary>
public sealed class BatcherTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A send whose batches complete only when the test says so; with <paramref name="answerInline"/>, on the thread
    /// that answers (no RunContinuationsAsynchronously), which is then the one that sees the send finish.
    /// </summary>
    private sealed class Wire(bool answerInline = false)
    {
        private readonly Lock _gate = new();
        private readonly List<(int[] Items, TaskCompletionSource Done)> _sent = [];
        private readonly SemaphoreSlim _arrived = new(0);

        public Task Send(int[] items)
        {
            var done = new TaskCompletionSource(answerInline ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                _sent.Add((items, done));
            }

            _arrived.Release();
            return done.Task;
        }

        public async Task<(int[] Items, TaskCompletionSource Done)> NextAsync(int index)
        {
            Assert.True(await _arrived.WaitAsync(s_wait, TestContext.Current.CancellationToken), $"batch {index} was not sent");
            lock (_gate)
            {
                return _sent[index];
            }
        }

        public int Count
        {
            get
            {
                lock (_gate)
                {
                    return _sent.Count;
                }
            }
        }
    }

    [Fact]
    public async Task Enqueue_WhileABatchIsOnTheWire_GathersTheRestIntoTheNextBatchInOrder()
    {
        var wire = new Wire();
        var batcher = new Batcher<int>(wire.Send);

        Task first = batcher.Enqueue(1);
        (int[] items, TaskCompletionSource done) = await wire.NextAsync(0);
        Task[] rest = [batcher.Enqueue(2), batcher.Enqueue(3), batcher.Enqueue(4)];

        Assert.Equal([1], items);
        Assert.Equal(1, wire.Count); // One batch at a time: the rest waits for the first to be answered.
        Assert.False(first.IsCompleted);
        done.SetResult();
        await first.WaitAsync(s_wait, TestContext.Current.CancellationToken);
        (int[] second, TaskCompletionSource secondDone) = await wire.NextAsync(1);
        Assert.Equal([2, 3, 4], second);
        Assert.All(rest, t => Assert.False(t.IsCompleted));
        secondDone.SetResult();
        await Task.WhenAll(rest).WaitAsync(s_wait, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Send_Fails_OnlyThatBatchsCallersSeeTheErrorAndTheNextBatchIsSent()
    {
        var wire = new Wire();
        var batcher = new Batcher<int>(wire.Send);

        Task first = batcher.Enqueue(1);
        (_, TaskCompletionSource done) = await wire.NextAsync(0);
        Task second = batcher.Enqueue(2);
        done.SetException(new InvalidOperationException("broker away"));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => first.WaitAsync(s_wait, TestContext.Current.CancellationToken));
        Assert.Equal("broker away", error.Message);
        (int[] items, TaskCompletionSource secondDone) = await wire.NextAsync(1);
        Assert.Equal([2], items);
        secondDone.SetResult();
        await second.WaitAsync(s_wait, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Send_ThrowsBeforeItsFirstWait_TheBatchFailsAndTheBatcherGoesOn()
    {
        int calls = 0;
        var batcher = new Batcher<int>(items => ++calls == 1 ? throw new InvalidOperationException("bad batch") : Task.CompletedTask);

        await Assert.ThrowsAsync<InvalidOperationException>(() => batcher.Enqueue(1).WaitAsync(s_wait, TestContext.Current.CancellationToken));
        await batcher.Enqueue(2).WaitAsync(s_wait, TestContext.Current.CancellationToken);
        Assert.Equal(2, calls);
    }

    [Fact]
    public async Task Send_Finishes_TheBatchsCallersGoOnOnThatThreadAfterTheNextBatchIsOnTheWire()
    {
        var wire = new Wire(answerInline: true);
        var batcher = new Batcher<int>(wire.Send);
        Task first = batcher.Enqueue(1);
        (_, TaskCompletionSource done) = await wire.NextAsync(0);
        Task second = batcher.Enqueue(2);
        (int Thread, int Sent)? wentOn = null;
        _ = first.ContinueWith(
            _ => wentOn = (Environment.CurrentManagedThreadId, wire.Count),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

        done.SetResult();

        // Already gone on, on this thread (no thread hand-off per batch), with the second batch already sent.
        Assert.Equal((Environment.CurrentManagedThreadId, 2), wentOn);
        (await wire.NextAsync(1)).Done.SetResult();
        await second.WaitAsync(s_wait, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Caller_BlocksOnTheNextBatchWhenItGoesOn_IsAnsweredWhenThatBatchIs()
    {
        var wire = new Wire(answerInline: true);
        var batcher = new Batcher<int>(wire.Send);
        Task first = batcher.Enqueue(1);
        (_, TaskCompletionSource done) = await wire.NextAsync(0);
        Task second = batcher.Enqueue(2);

        // A caller that, going on, waits for the next batch without yielding its thread (as a synchronous Dispose may).
        Task<bool> wentOn = first.ContinueWith(_ => second.Wait(s_wait), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _ = Task.Run(done.SetResult, TestContext.Current.CancellationToken);
        (await wire.NextAsync(1)).Done.SetResult();

        Assert.True(await wentOn.WaitAsync(s_wait, TestContext.Current.CancellationToken), "the second batch's callers were never answered");
    }

    [Fact]
    public async Task DrainAsync_CompletesOnlyOnceEverythingEnqueuedWasSent()
    {
        var wire = new Wire();
        var batcher = new Batcher<int>(wire.Send);
        Assert.True(batcher.DrainAsync().IsCompletedSuccessfully); // Idle: nothing to wait for.

        _ = batcher.Enqueue(1);
        (_, TaskCompletionSource done) = await wire.NextAsync(0);
        _ = batcher.Enqueue(2);
        Task drained = batcher.DrainAsync();
        done.SetResult();
        (_, TaskCompletionSource secondDone) = await wire.NextAsync(1);

        Assert.False(drained.IsCompleted); // The second batch is still on the wire.
        secondDone.SetResult();
        await drained.WaitAsync(s_wait, TestContext.Current.CancellationToken);
    }
}
