using System.Diagnostics;
using Celeriac.Results;
using Celeriac.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Celeriac.Tests.Sqlite;

/// <summary>Waiting for results that another process writes.</summary>
public sealed class SqliteResultWaitTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("celeriac-sqlite-wait-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ResultBackendOptions Options => new() { Url = new Uri("sqlite:///" + Path.Join(_directory, "results.db")) };

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    private static TaskResultMeta Success(string id) => new() { TaskId = id, Status = TaskStates.Success, Result = "1"u8.ToArray() };

    [Fact]
    public async Task WaitAsync_ResultWrittenByAnotherProcess_WokenWithinMillisecondsNotAtThePollInterval()
    {
        SqliteStore waiterStore = SqliteStore.OpenPrivate(Path.Join(_directory, "results.db"), NullLoggerFactory.Instance);
        await using var waiter = new SqliteResultBackend(Options, waiterStore);
        await using var writer = new SqliteResultBackend(Options, SqliteStore.OpenPrivate(Path.Join(_directory, "results.db"), NullLoggerFactory.Instance));
        var latencies = new List<double>();
        for (int i = 0; i < 20; i++)
        {
            string id = Guid.NewGuid().ToString();
            Task<TaskResultMeta> wait = waiter.WaitAsync(id, Ct).AsTask();

            // Let the waiter fall into its back-off before writing: polling alone would next look 33 ms after the
            // write (at 93 ms: 31 + 62), the data_version watch sees the commit within its 1-50 ms poll.
            await Task.Delay(60, Ct);
            long start = Stopwatch.GetTimestamp();
            await writer.StoreAsync(Success(id), Ct);
            await wait.WaitAsync(TimeSpan.FromSeconds(10), Ct);
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        latencies.Sort();
        Assert.True(latencies[latencies.Count / 2] < 25, $"median wake-up {latencies[latencies.Count / 2]:F1} ms; all: {string.Join(", ", latencies.Select(l => l.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.True(waiterStore.KeyWaiters.IsEmpty, "finished waits must not leave their keys behind");
    }

    [Fact]
    public async Task WaitAsync_ThousandWaitersOnAnotherProcessesResults_AllWokenAndNothingLeftBehind()
    {
        SqliteStore waiterStore = SqliteStore.OpenPrivate(Path.Join(_directory, "results.db"), NullLoggerFactory.Instance);
        await using var waiter = new SqliteResultBackend(Options, waiterStore);
        await using var writer = new SqliteResultBackend(Options, SqliteStore.OpenPrivate(Path.Join(_directory, "results.db"), NullLoggerFactory.Instance));
        string[] ids = [.. Enumerable.Range(0, 1000).Select(_ => Guid.NewGuid().ToString())];
        Task<TaskResultMeta>[] waits = [.. ids.Select(id => waiter.WaitAsync(id, Ct).AsTask())];

        await Task.WhenAll(ids.Select(id => writer.StoreAsync(Success(id), Ct).AsTask()));
        TaskResultMeta[] done = await Task.WhenAll(waits).WaitAsync(TimeSpan.FromSeconds(20), Ct);

        Assert.All(done, m => Assert.Equal(TaskStates.Success, m.Status));
        Assert.True(waiterStore.KeyWaiters.IsEmpty, "finished waits must not leave their keys behind");
    }
}
