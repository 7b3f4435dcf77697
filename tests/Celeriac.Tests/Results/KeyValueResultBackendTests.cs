using System.Collections.Concurrent;
using Celeriac.Results;
using Celeriac.Tests.Support;

namespace Celeriac.Tests.Results;

/// <summary>What every key-value result backend inherits from <see cref="KeyValueResultBackend"/>.</summary>
public sealed class KeyValueResultBackendTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A store of bytes a test can write to directly, as another process (or a non-atomic store) would.</summary>
    private sealed class Store() : KeyValueResultBackend(new ResultBackendOptions { Url = new Uri("test://"), PollInterval = TimeSpan.FromMilliseconds(20) })
    {
        private int _reads;

        public ConcurrentDictionary<string, byte[]> Values { get; } = new(StringComparer.Ordinal);

        public int Reads => Volatile.Read(ref _reads);

        protected override ValueTask<byte[]?> GetValueAsync(string key, CancellationToken ct)
        {
            Interlocked.Increment(ref _reads);
            return ValueTask.FromResult(Values.TryGetValue(key, out byte[]? value) ? value : null);
        }

        protected override ValueTask SetValueAsync(string key, byte[] value, TimeSpan? expiry, CancellationToken ct)
        {
            Values[key] = value;
            return ValueTask.CompletedTask;
        }

        protected override ValueTask DeleteValueAsync(string key, CancellationToken ct)
        {
            Values.TryRemove(key, out _);
            return ValueTask.CompletedTask;
        }

        protected override ValueTask<long> IncrementValueAsync(string key, TimeSpan? expiry, CancellationToken ct) =>
            throw new NotSupportedException();
    }

    [Fact]
    public async Task EmptyStoredValue_ReadsAsPendingAndIsWaitedPast_AsInCelery()
    {
        var store = new Store();
        string id = Guid.NewGuid().ToString();
        store.Values[KeyValueResultBackend.TaskKeyPrefix + id] = [];

        Assert.Null(await store.GetAsync(id, Ct));
        Task<TaskResultMeta> waiting = store.WaitAsync(id, Ct).AsTask();

        // The waiter has read the empty value three times (it polls every few milliseconds).
        Assert.True(await Poll.UntilAsync(() => store.Reads >= 4, TimeSpan.FromSeconds(5)), $"the waiter read {store.Reads - 1} times");
        Assert.False(waiting.IsCompleted, waiting.IsFaulted ? waiting.Exception!.InnerException!.Message : "completed");
        await store.StoreAsync(new TaskResultMeta { TaskId = id, Status = TaskStates.Success, Result = "42"u8.ToArray() }, Ct);

        TaskResultMeta meta = await waiting.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(TaskStates.Success, meta.Status);
    }
}
